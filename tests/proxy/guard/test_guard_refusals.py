"""Requests the spend guard refuses are recorded, with why: /analytics, the stream, usage, stats.

A refused request never reaches an upstream, so it is counted apart (`refused`), never as a
request, an error or a latency; the reason recorded is the halt's own (the same for every request
it refuses), not the client's message with its minutes-to-resume countdown.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from driftgate.proxy.cli import main as cli_main
from driftgate.proxy.config import Config
from driftgate.proxy.guard.settings import GuardSettings, StateSettings
from driftgate.proxy.observe.records import GUARD_HALTED, GUARD_UNAVAILABLE
from driftgate.proxy.server import GatewayServer
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server_thread import closed_port

MODEL = "claude-sonnet-4-6"  # $3 / $15 per MTok in the bundled template
BIG = 20_000  # output tokens that reserve $0.30, past a $0.25 budget
TIGHT = 0.25
BOUND = 15.0


@pytest.fixture
def start(
    tmp_path: Path, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> Iterator[Callable[..., GatewayServer]]:
    servers: list[GatewayServer] = []

    def boot(guard: GuardSettings, **kw: Any) -> GatewayServer:
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        config = Config(
            home=home,
            path=home / "config.toml",
            port=0,
            backends=(fake_anthropic.backend(), fake_openai.backend(models=["gpt-*"])),
            guard=guard,
            **kw,
        )
        server = GatewayServer(config, env={})
        server.start()
        servers.append(server)
        return server

    try:
        yield boot
    finally:
        for server in reversed(servers):
            server.stop()


def _claude(url: str, max_tokens: int = 64) -> int:
    client = anthropic.Anthropic(base_url=url, api_key="sk-client", max_retries=0)
    try:
        client.messages.create(
            model=MODEL,
            max_tokens=max_tokens,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-claude-code-session-id": "sess-r"},
        )
    except anthropic.APIStatusError as exc:
        return exc.status_code
    return 200


def _gpt(url: str) -> int:
    client = openai.OpenAI(base_url=url + "/v1", api_key="sk-client", max_retries=0)
    try:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    except openai.APIStatusError as exc:
        return exc.status_code
    return 200


def _analytics_once(url: str, refused: int) -> dict[str, Any] | None:
    doc: dict[str, Any] = httpx.get(f"{url}/analytics", timeout=BOUND).json()
    return doc if doc["total"]["refused"] >= refused else None


def _analytics(url: str, refused: int) -> dict[str, Any]:
    """/analytics once the recorder has written `refused` refusals (records land every ~50 ms)."""
    deadline = time.monotonic() + BOUND
    while (doc := _analytics_once(url, refused)) is None:
        assert time.monotonic() < deadline, "the refusals never reached /analytics"
        time.sleep(0.05)
    return doc


def test_refused_requests_are_recorded_with_the_halts_reason(
    start: Callable[..., GatewayServer], fake_anthropic: FakeAnthropic
) -> None:
    gw = start(GuardSettings(daily_usd=TIGHT, cooldown_minutes=30))
    assert _claude(gw.url, max_tokens=BIG) == 503  # its reservation does not fit: trips the halt
    assert _claude(gw.url) == 503  # halted
    assert _gpt(gw.url) == 503  # halted for every backend (the total budget)
    assert not fake_anthropic.requests  # nothing was forwarded

    doc = _analytics(gw.url, refused=3)
    total = doc["total"]
    assert total["refused"] == 3
    # never counted as requests, errors or latencies: nothing was asked of an upstream
    assert (total["requests"], total["errors"], total["cost_usd"]) == (0, 0, 0.0)
    assert total["p50_latency_ms"] is None
    by_backend = {g["key"]: g["refused"] for g in doc["backends"]}
    assert by_backend == {"anthropic": 2, "openai": 1}
    assert {g["key"]: g["refused"] for g in doc["sessions"]} == {"sess-r": 2}
    refusals = doc["refusals"]
    assert {(r["backend"], r["requests"]) for r in refusals} == {("anthropic", 2), ("openai", 1)}
    for r in refusals:
        assert r["outcome"] == GUARD_HALTED
        # the halt's reason, the same for every request it refused (no countdown in it)
        assert r["reason"].startswith("the daily total budget of $0.25 is reached")
        assert "min" not in r["reason"] and r["first"] <= r["last"]


def test_a_refusal_is_on_the_live_stream_and_in_metrics_as_a_503(
    start: Callable[..., GatewayServer],
) -> None:
    gw = start(GuardSettings(daily_usd=TIGHT))
    with httpx.stream("GET", f"{gw.url}/analytics/stream", timeout=BOUND) as live:
        lines = live.iter_lines()
        assert next(lines).startswith(": driftgate")  # subscribed: the next record is sent to us
        assert _claude(gw.url, max_tokens=BIG) == 503
        record = _next_record(lines)
    assert record["status"] == 503 and record["outcome"] == GUARD_HALTED
    assert "daily total budget" in record["reason"]
    assert record["cost_usd"] == 0.0 and record["input_tokens"] == 0
    metrics = httpx.get(f"{gw.url}/metrics", timeout=BOUND).text
    assert 'status="503"' in metrics


def _next_record(lines: Iterator[str]) -> dict[str, Any]:
    for line in lines:
        if line.startswith("data:"):
            doc: dict[str, Any] = json.loads(line[5:])
            if "status" in doc:
                return doc
    raise AssertionError("the stream ended without a record")


def test_usage_and_stats_show_refusals_and_why(
    start: Callable[..., GatewayServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gw = start(GuardSettings(daily_usd=TIGHT))
    assert _claude(gw.url) == 200  # one forwarded request, then the halt
    assert _claude(gw.url, max_tokens=BIG) == 503
    assert _claude(gw.url) == 503
    _analytics(gw.url, refused=2)
    home = tmp_path / "home"
    monkeypatch.setenv("DRIFTGATE_HOME", str(home))
    config = home / "config.toml"
    config.write_text("", encoding="utf-8")

    assert cli_main(["--config", str(config), "usage", "--json"]) == 0
    [row] = [r for r in json.loads(capsys.readouterr().out) if r["backend"] == "anthropic"]
    assert (row["requests"], row["errors"], row["refused"]) == (1, 0, 2)
    assert cli_main(["--config", str(config), "usage"]) == 0
    out = capsys.readouterr().out
    assert "REFUSED" in out.splitlines()[0]
    assert "refused without forwarding" in out
    assert "guard_halted: the daily total budget of $0.25 is reached" in out

    assert cli_main(["--config", str(config), "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["total"]["refused"] == 2 and stats["total"]["requests"] == 1
    assert stats["refusals"][0]["requests"] == 2
    assert cli_main(["--config", str(config), "stats"]) == 0
    out = capsys.readouterr().out
    assert "2 refused by the spend guard" in out and "guard_halted" in out


def test_a_guard_store_that_fails_closed_records_its_refusals(
    start: Callable[..., GatewayServer], fake_anthropic: FakeAnthropic
) -> None:
    pytest.importorskip("redis")
    nowhere = f"redis://127.0.0.1:{closed_port()}/0"  # nothing listens there
    state = StateSettings(redis_url=nowhere, fail="closed", timeout_seconds=1.0)
    gw = start(GuardSettings(daily_usd=10.0), state=state)
    assert _claude(gw.url) == 503
    assert not fake_anthropic.requests
    [refusal] = _analytics(gw.url, refused=1)["refusals"]
    assert refusal["outcome"] == GUARD_UNAVAILABLE
    assert "does not answer" in refusal["reason"] and 'fail = "closed"' in refusal["reason"]
