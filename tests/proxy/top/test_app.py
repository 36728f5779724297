"""`driftgate top` driven headlessly by Textual's Pilot against real gateways on loopback."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import anthropic
import httpx
import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from driftgate.proxy.config import AnalyticsConfig
from driftgate.proxy.guard.settings import GuardSettings
from driftgate.proxy.top.app import TopApp
from driftgate.proxy.top.client import GatewayClient
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI
from tests.proxy.top.shown import screen_text, shown
from tests.proxy.top.traffic import SECRET_PROMPT, expensive_request, traffic, until

SIZE = (140, 42)
Scenario = Callable[[TopApp, Pilot[None]], Coroutine[Any, Any, None]]


def drive(url: str, scenario: Scenario, api_key: str | None = None) -> None:
    """Run the app headless on `url` and play `scenario` against it."""

    async def main() -> None:
        app = TopApp(GatewayClient(url, api_key), interval=0.2)
        async with app.run_test(size=SIZE) as pilot:
            await scenario(app, pilot)

    asyncio.run(main())


def _hits(app: TopApp) -> DataTable[Any]:
    return app.query_one("#hits-table", DataTable)


def test_sdk_requests_appear_in_hits_and_in_analytics(gateway: Any) -> None:
    async def scenario(app: TopApp, pilot: Pilot[None]) -> None:
        await until(pilot, lambda: app.state.streaming, "the live stream to open")
        await traffic(gateway.url)
        await until(pilot, lambda: _hits(app).row_count == 4, "four rows in Hits")
        rows = [" ".join(map(str, _hits(app).get_row_at(i))) for i in range(4)]
        assert "sonnet → claude-sonnet-4-6" in rows[0] and "anthropic" in rows[0]
        assert "claude-haiku-4-5" in rows[1]
        assert "gpt-4o" in rows[2] and "openai-python" in rows[2]
        assert "chat ~" in rows[3]  # the stream is marked

        def models() -> str:
            text = shown(app, "#analytics-body")
            return text if "gpt-4o-mini" in text else ""

        text = await until(pilot, models, "the four models in Analytics")
        assert "Last 60m   4 requests" in text
        assert "burn rate $" in text and "/h" in text
        for model in ("claude-sonnet-4-6", "claude-haiku-4-5", "gpt-4o"):
            assert model in text
        # the fakes send the real APIs' rate-limit headers; the latest per backend is shown
        assert "anthropic  2.0% (49/50 left)" in text
        assert "Rate-limit utilisation" in text
        await pilot.press("4")
        backends = shown(app, "#backends-body")
        assert "anthropic" in backends and "openai" in backends and "0% of 2" in backends

    drive(gateway.url, scenario)


def test_the_drill_down_shows_one_requests_metadata_and_never_its_prompt(gateway: Any) -> None:
    async def scenario(app: TopApp, pilot: Pilot[None]) -> None:
        await until(pilot, lambda: app.state.streaming, "the live stream to open")
        await traffic(gateway.url)
        await until(pilot, lambda: _hits(app).row_count == 4, "four rows in Hits")
        await pilot.press("3")
        _hits(app).move_cursor(row=0)
        await pilot.press("enter")
        await pilot.pause()
        detail = shown(app, "#hit-detail")
        first = app.state.hits[0].doc
        assert first["request_id"] in detail
        assert "sess-top-1" in detail
        assert re.search(r"model requested\s+sonnet\s", detail)
        assert re.search(r"anthropic-ratelimit-requests-limit\s+50\s", detail)
        assert SECRET_PROMPT not in detail
        assert "tangerine" not in screen_text(app)
        _hits(app).move_cursor(row=2)  # the detail follows the cursor
        await pilot.pause()
        assert "gpt-4o" in shown(app, "#hit-detail")

    drive(gateway.url, scenario)


def test_a_halted_guard_shows_on_status_and_r_resumes_it(
    gateway_factory: Callable[..., Any], fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> None:
    gw = gateway_factory(
        backends=[fake_anthropic, fake_openai.backend(models=["gpt-*"])],
        guard=GuardSettings(daily_usd=1.0),
    )

    async def scenario(app: TopApp, pilot: Pilot[None]) -> None:
        await until(pilot, lambda: "Spend guard: ok" in shown(app, "#status-body"), "guard ok")
        fake_anthropic.cache_creation_tokens = 400_000  # $1.50 a request
        await asyncio.to_thread(expensive_request, gw.url)
        await until(pilot, lambda: _spent(app) > 1.0, "the spend to be settled")
        with pytest.raises(anthropic.APIStatusError):
            await asyncio.to_thread(expensive_request, gw.url)  # halts the guard
        status = await until(
            pilot, lambda: (t := shown(app, "#status-body")) and "HALTED" in t and t, "HALTED"
        )
        assert "why: the daily total budget of $1.00 is reached" in status
        assert "press r to resume" in status
        await pilot.press("r")
        await until(pilot, lambda: _gateway_guard(gw.url) == "ok", "/health to say resumed")
        await until(pilot, lambda: "Spend guard: ok" in shown(app, "#status-body"), "ok shown")
        fake_anthropic.cache_creation_tokens = 0
        assert (await asyncio.to_thread(expensive_request, gw.url)).content  # forwarded again

    drive(gw.url, scenario)


def _spent(app: TopApp) -> float:
    limits = app.state.guard.get("limits") or [{}]
    return float(limits[0].get("spent_usd", 0.0))


def _gateway_guard(url: str) -> str:
    return str(httpx.get(f"{url}/health", timeout=5).json()["guard"]["state"])


def test_a_gateway_that_goes_away_is_shown_not_reachable_and_followed_again_when_back(
    gateway_factory: Callable[..., Any], fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> None:
    backends = [fake_anthropic, fake_openai.backend(models=["gpt-*"])]
    first = gateway_factory(backends=backends)
    port = first.port

    async def scenario(app: TopApp, pilot: Pilot[None]) -> None:
        await until(pilot, lambda: app.state.streaming, "the live stream to open")
        await asyncio.to_thread(first.stop)
        banner = await until(
            pilot, lambda: "NOT REACHABLE" in (t := shown(app, "#banner")) and t, "NOT REACHABLE"
        )
        assert f"no gateway answers at http://127.0.0.1:{port}" in banner
        assert "retrying every 0.2s" in banner
        assert "driftgate proxy" in banner
        await pilot.press("2")  # the tabs still work, showing what was last read
        await until(pilot, lambda: app.state.problem, "the problem")
        second = await asyncio.to_thread(gateway_factory, backends=backends, port=port)
        await until(pilot, lambda: app.state.streaming, "the stream to be followed again")
        assert "connected to" in shown(app, "#banner")
        await traffic(second.url)
        await until(pilot, lambda: _hits(app).row_count == 4, "the new requests in Hits")

    drive(first.url, scenario)


def test_no_gateway_at_all_is_said_plainly_and_the_app_keeps_running() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def scenario(app: TopApp, pilot: Pilot[None]) -> None:
        await until(pilot, lambda: "NOT REACHABLE" in shown(app, "#banner"), "NOT REACHABLE")
        started = app.state.down_since
        for key in ("1", "2", "3", "4", "r", "w", "p"):
            await pilot.press(key)
        await pilot.pause()
        assert app.is_running and app.state.down_since == started
        assert "waiting for the gateway's /health" in shown(app, "#status-body")

    drive(f"http://127.0.0.1:{port}", scenario)


def test_a_wrong_gateway_key_and_analytics_turned_off_are_said_in_words(
    gateway_factory: Callable[..., Any], fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(
        backends=[fake_anthropic], api_key="gw-key", analytics=AnalyticsConfig(enabled=False)
    )

    async def wrong_key(app: TopApp, pilot: Pilot[None]) -> None:
        text = await until(pilot, lambda: (t := shown(app, "#analytics-body")) and "401" in t and t,
                           "a 401 in words")  # fmt: skip
        assert "the gateway answered 401" in text

    async def right_key(app: TopApp, pilot: Pilot[None]) -> None:
        text = await until(pilot, lambda: (t := shown(app, "#analytics-body")) and "off" in t and t,
                           "analytics off in words")  # fmt: skip
        assert "analytics are off ([analytics] enabled = false)" in text
        assert "status ok" in shown(app, "#status-body")

    drive(gw.url, wrong_key, api_key="not-the-key")
    drive(gw.url, right_key, api_key="gw-key")


def test_w_cycles_the_analytics_window(gateway: Any) -> None:
    async def scenario(app: TopApp, pilot: Pilot[None]) -> None:
        await until(pilot, lambda: "Last 60m" in shown(app, "#analytics-body"), "60m")
        await pilot.press("w")
        await until(pilot, lambda: "Last 24h" in shown(app, "#analytics-body"), "24h")

    drive(gateway.url, scenario)


@pytest.mark.parametrize("size", [(80, 24), (140, 42)])
def test_every_tab_fits_the_terminal_so_the_banner_never_scrolls_away(
    gateway: Any, size: tuple[int, int]
) -> None:
    async def main() -> None:
        app = TopApp(GatewayClient(gateway.url), interval=0.2)
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: app.state.streaming, "the live stream to open")
            for key in ("1", "2", "3", "4"):
                await pilot.press(key)
                await pilot.pause()
                assert not app.screen.show_vertical_scrollbar, f"tab {key} scrolls the screen"
                assert app.query_one("#banner").region.y == 1  # right under the header

    asyncio.run(main())
