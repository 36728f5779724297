"""Make the docs' screenshots of `driftgate top` (docs/img/top-*.svg) on a populated gateway.

    .venv/bin/python -m tests.proxy.top.screenshots [OUT_DIR]   (default docs/img)

A gateway with a $1 daily budget runs on loopback in front of the fake upstreams; requests go
through it with the official SDKs, one costs $1.50 so the spend guard halts, and each tab of
the headless app is exported as SVG by Textual. tests/proxy/top/test_screenshots.py runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from pathlib import Path

import anthropic
from textual.widgets import DataTable

from driftgate.proxy.config import Config
from driftgate.proxy.guard.settings import GuardSettings
from driftgate.proxy.server import GatewayServer
from driftgate.proxy.top.app import TABS, TopApp
from driftgate.proxy.top.client import GatewayClient
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI
from tests.proxy.top.traffic import expensive_request, traffic, until

SIZE = (140, 42)
EXPENSIVE_CACHE_WRITES = 400_000  # $1.50 at Sonnet's $3.75/MTok cache-write price


async def shoot(out_dir: Path, gateway_url: str, fake: FakeAnthropic) -> dict[str, Path]:
    """Populate the gateway at `gateway_url`, then write one SVG per tab; {tab id: file}."""
    app = TopApp(GatewayClient(gateway_url), interval=0.25)
    written: dict[str, Path] = {}
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.state.streaming, "the live stream to open")
        await traffic(gateway_url)
        fake.cache_creation_tokens = EXPENSIVE_CACHE_WRITES
        await asyncio.to_thread(expensive_request, gateway_url)  # under budget when it starts
        await until(pilot, lambda: app.state.seen >= 5, "five requests in Hits")
        await until(pilot, lambda: _settled(app), "the $1.50 request to be settled")
        with contextlib.suppress(anthropic.APIStatusError):  # over the budget: the guard halts
            await asyncio.to_thread(expensive_request, gateway_url)
        await until(pilot, lambda: app.state.guard.get("state") == "halted", "the guard to halt")
        await until(pilot, lambda: _models(app) >= 4, "four models in Analytics")
        table = app.query_one("#hits-table", DataTable)
        for tab, title in TABS:
            await pilot.press(str([t for t, _ in TABS].index(tab) + 1))
            if tab == "hits":
                table.move_cursor(row=0)  # the drill-down into the first request
            if tab == "backends":
                await pilot.press("p")
                await until(pilot, lambda: _probed(app), "every backend probed")
            await pilot.pause()
            path = out_dir / f"top-{tab}.svg"
            path.write_text(app.export_screenshot(title=f"driftgate top: {title}"), "utf-8")
            written[tab] = path
    return written


def _settled(app: TopApp) -> bool:
    limits = app.state.guard.get("limits") or []
    return bool(limits) and float(limits[0].get("spent_usd", 0)) > 1.0


def _probed(app: TopApp) -> bool:
    return len(app.state.probes) == 2


def _models(app: TopApp) -> int:
    return len((app.state.analytics or {}).get("models", []))


def make(out_dir: Path) -> dict[str, Path]:
    """Start the fakes and a guarded gateway, shoot every tab, stop them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ant, oai = FakeAnthropic().start(), FakeOpenAI().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            config = Config(
                home=home,
                path=home / "config.toml",
                port=0,
                backends=(ant.backend(), oai.backend(models=["gpt-*"])),
                guard=GuardSettings(daily_usd=1.0, hourly_usd=5.0),
            )
            with GatewayServer(config, env={}) as gw:
                return asyncio.run(shoot(out_dir, gw.url, ant))
    finally:
        ant.stop()
        oai.stop()


if __name__ == "__main__":
    for name, file in make(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img")).items():
        print(f"{name}: {file}")
