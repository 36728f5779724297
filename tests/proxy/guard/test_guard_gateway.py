"""The spend guard through a running gateway: halt, warn, header rule, cooldown, resume, restart."""

from __future__ import annotations

import concurrent.futures
import logging
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
from driftgate.proxy.guard.settings import BackendBudget, GuardSettings
from driftgate.proxy.server import GatewayServer
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI

MODEL = "claude-sonnet-4-6"  # $3 / $15 / cache write $3.75 per MTok in the bundled template


BIG = 20_000  # output tokens that reserve $0.30, past a $0.25 budget (TIGHT)
TIGHT = 0.25


class Wall:
    """A settable time of day for the guard's windows and cooldowns."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
def start(
    tmp_path: Path, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI, wall: Wall
) -> Iterator[Callable[..., GatewayServer]]:
    """Start a gateway with a [guard] table on a home that outlives one gateway (restarts)."""
    servers: list[GatewayServer] = []

    def boot(guard: GuardSettings, home: Path | None = None) -> GatewayServer:
        home = home or tmp_path / "home"
        home.mkdir(exist_ok=True)
        config = Config(
            home=home,
            path=home / "config.toml",
            port=0,
            backends=(fake_anthropic.backend(), fake_openai.backend(models=["gpt-*"])),
            guard=guard,
        )
        server = GatewayServer(config, env={}, wall=wall)
        server.start()
        servers.append(server)
        return server

    try:
        yield boot
    finally:
        for server in reversed(servers):
            server.stop()


def _claude(url: str, max_tokens: int = 64) -> Any:
    client = anthropic.Anthropic(base_url=url, api_key="sk-client", max_retries=0)
    return client.messages.create(
        model=MODEL, max_tokens=max_tokens, messages=[{"role": "user", "content": "hi"}]
    )


def _health(url: str) -> dict[str, Any]:
    doc: dict[str, Any] = httpx.get(f"{url}/health", timeout=10).json()
    return doc


def _settled(url: str, above: float) -> dict[str, Any]:
    """The guard's state once the recorder has settled spend above `above` USD (bounded wait)."""
    deadline = time.monotonic() + 10
    while True:
        guard = _health(url)["guard"]
        daily = [x for x in guard["limits"] if x["backend"] is None]
        if daily and daily[0]["spent_usd"] > above and guard["in_flight_usd"] == 0:
            return guard
        assert time.monotonic() < deadline, f"spend never settled above {above}: {guard}"
        time.sleep(0.02)


def test_spend_past_the_daily_budget_halts_in_each_dialect(
    start: Callable[..., GatewayServer], fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.cache_creation_tokens = 400_000  # $1.50 a request at $3.75/MTok
    gw = start(GuardSettings(daily_usd=1.0))
    assert _claude(gw.url).content  # under the budget: forwarded
    state = _settled(gw.url, above=1.0)
    assert state["state"] == "ok"

    with pytest.raises(anthropic.APIStatusError) as caught:
        _claude(gw.url)
    err = caught.value
    assert err.status_code == 503
    assert err.response.headers["x-should-retry"] == "false"
    body = err.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "api_error"
    message = body["error"]["message"]
    assert "spend guard" in message and "daily total budget of $1.00" in message
    assert "driftgate resume" in message

    chat = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-client", max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught_openai:
        chat.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert caught_openai.value.status_code == 503
    assert caught_openai.value.response.json()["error"]["code"] == "spend_guard_halted"

    metrics = httpx.get(f"{gw.url}/metrics", timeout=10).text
    assert 'driftgate_guard_state{driftgate_guard_state="halted"} 1.0' in metrics
    assert 'driftgate_guard_state{driftgate_guard_state="ok"} 0.0' in metrics

    health = _health(gw.url)
    assert health["status"] == "halted"
    assert health["guard"]["state"] == "halted"
    assert "daily total budget" in health["guard"]["reason"]


def test_a_request_whose_reservation_does_not_fit_is_refused_before_it_is_sent(
    start: Callable[..., GatewayServer], fake_anthropic: FakeAnthropic
) -> None:
    # 20,000 output tokens at $15/MTok reserve $0.30 against a $0.25 budget: nothing goes upstream.
    gw = start(GuardSettings(daily_usd=TIGHT))
    before = len(fake_anthropic.requests)
    with pytest.raises(anthropic.APIStatusError) as caught:
        _claude(gw.url, max_tokens=BIG)
    assert caught.value.status_code == 503
    assert len(fake_anthropic.requests) == before


def test_count_tokens_is_never_reserved_or_refused(
    start: Callable[..., GatewayServer], fake_anthropic: FakeAnthropic
) -> None:
    gw = start(GuardSettings(daily_usd=TIGHT))
    with pytest.raises(anthropic.APIStatusError):
        _claude(gw.url, max_tokens=BIG)  # halts the guard
    client = anthropic.Anthropic(base_url=gw.url, api_key="sk-client", max_retries=0)
    counted = client.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    assert counted.input_tokens > 0


def test_warn_lets_requests_through_and_logs_once(
    start: Callable[..., GatewayServer],
    fake_anthropic: FakeAnthropic,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="driftgate.guard")
    fake_anthropic.cache_creation_tokens = 400_000
    gw = start(GuardSettings(daily_usd=1.0, action="warn"))
    _claude(gw.url)
    _settled(gw.url, above=1.0)
    for _ in range(3):
        assert _claude(gw.url).content
    warnings = [r for r in caplog.records if "action = warn" in r.getMessage()]
    assert len(warnings) == 1
    assert _health(gw.url)["guard"]["state"] == "ok"


def test_a_response_header_trips_the_guard(
    start: Callable[..., GatewayServer], fake_anthropic: FakeAnthropic
) -> None:
    gw = start(GuardSettings(header="x-billing-tier", header_values=("overage",)))
    fake_anthropic.world.extra_headers["x-billing-tier"] = "standard"
    assert _claude(gw.url).content
    assert _claude(gw.url).content  # a value not on the list: nothing happens
    fake_anthropic.world.extra_headers["x-billing-tier"] = "Overage"
    assert _claude(gw.url).content  # the request that carried it was already billed
    with pytest.raises(anthropic.APIStatusError) as caught:
        _claude(gw.url)
    assert caught.value.status_code == 503
    assert "x-billing-tier: Overage" in caught.value.response.json()["error"]["message"]


def test_the_halt_lifts_by_itself_after_the_cooldown(
    start: Callable[..., GatewayServer], fake_anthropic: FakeAnthropic, wall: Wall
) -> None:
    fake_anthropic.cache_creation_tokens = 400_000
    gw = start(GuardSettings(hourly_usd=1.0, cooldown_minutes=30))
    _claude(gw.url)
    _settled(gw.url, above=1.0)
    with pytest.raises(anthropic.APIStatusError):
        _claude(gw.url)
    wall.now += 29 * 60
    with pytest.raises(anthropic.APIStatusError):
        _claude(gw.url)  # still cooling down
    wall.now += 32 * 60  # the cooldown is over and the hour has passed: the spend left the window
    assert _claude(gw.url).content
    assert _health(gw.url)["guard"]["state"] == "ok"


def test_driftgate_resume_lifts_the_halt_of_a_running_gateway(
    start: Callable[..., GatewayServer],
    fake_anthropic: FakeAnthropic,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gw = start(GuardSettings(daily_usd=TIGHT, cooldown_minutes=0))
    with pytest.raises(anthropic.APIStatusError):
        _claude(gw.url, max_tokens=BIG)
    assert _health(gw.url)["guard"]["until"] is None  # no cooldown: only a resume lifts it
    assert cli_main(["resume", "--url", gw.url]) == 0
    assert "resumed" in capsys.readouterr().out
    assert _claude(gw.url).content


def test_resume_with_no_gateway_running_clears_the_state_file(
    start: Callable[..., GatewayServer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("DRIFTGATE_HOME", str(home))
    gw = start(GuardSettings(daily_usd=TIGHT, cooldown_minutes=0), home=home)
    with pytest.raises(anthropic.APIStatusError):
        _claude(gw.url, max_tokens=BIG)
    gw.stop()
    config = home / "config.toml"
    config.write_text("[guard]\ndaily_usd = 0.25\n", encoding="utf-8")
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens there
    assert cli_main(["--config", str(config), "resume", "--url", closed]) == 0
    assert "lifted in the state file" in capsys.readouterr().out
    again = start(GuardSettings(daily_usd=TIGHT, cooldown_minutes=0), home=home)
    assert _claude(again.url).content


def test_spend_and_the_halt_survive_a_restart(
    start: Callable[..., GatewayServer], fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    fake_anthropic.cache_creation_tokens = 400_000
    home = tmp_path / "home"
    gw = start(GuardSettings(daily_usd=2.0, cooldown_minutes=0), home=home)
    _claude(gw.url)
    _settled(gw.url, above=1.0)
    gw.stop()

    again = start(GuardSettings(daily_usd=2.0, cooldown_minutes=0), home=home)
    assert _settled(again.url, above=1.0)["state"] == "ok"  # the $1.50 is remembered
    _claude(again.url)  # its reservation fits; what it really costs ($1.50) does not
    _settled(again.url, above=2.0)
    with pytest.raises(anthropic.APIStatusError):
        _claude(again.url)
    again.stop()

    third = start(GuardSettings(daily_usd=2.0, cooldown_minutes=0), home=home)
    assert _health(third.url)["guard"]["state"] == "halted"


def test_a_per_backend_budget_halts_only_when_that_backend_spent_it(
    start: Callable[..., GatewayServer], fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.cache_creation_tokens = 400_000
    gw = start(GuardSettings(backends={"anthropic": BackendBudget(daily_usd=1.0)}))
    chat = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-client", max_retries=0)
    for _ in range(3):
        chat.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    _claude(gw.url)
    deadline = time.monotonic() + 10
    while True:
        limits = _health(gw.url)["guard"]["limits"]
        if next(x for x in limits if x["backend"] == "anthropic")["spent_usd"] > 1.0:
            break
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with pytest.raises(anthropic.APIStatusError) as caught:
        _claude(gw.url)
    assert "budget of backend 'anthropic'" in caught.value.response.json()["error"]["message"]


def test_concurrent_requests_never_spend_past_the_budget(
    start: Callable[..., GatewayServer], fake_anthropic: FakeAnthropic
) -> None:
    # Each request reserves ~$0.060 (4,000 output tokens at $15/MTok) and really costs ~$0.057
    # (15,000 cache-write tokens at $3.75/MTok): a guard that only counted settled spend would let
    # 16 concurrent requests through at once and overspend; reservations stop it at 8.
    fake_anthropic.cache_creation_tokens = 15_000
    gw = start(GuardSettings(daily_usd=0.5, action="halt", cooldown_minutes=0))
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: _try(gw.url), range(32)))
    assert set(results) <= {200, 503}
    assert 1 <= results.count(200) <= 8
    state = _settled(gw.url, above=0.05)
    spent = next(x for x in state["limits"] if x["backend"] is None)["spent_usd"]
    assert spent <= 0.5


def _try(url: str) -> int:
    try:
        _claude(url, max_tokens=4000)
    except anthropic.APIStatusError as exc:
        return exc.status_code
    return 200


def test_a_budget_for_an_unknown_backend_is_refused_at_start(
    start: Callable[..., GatewayServer],
) -> None:
    from driftgate.proxy.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\[guard.backends.opus\] names backend 'opus'"):
        start(GuardSettings(backends={"opus": BackendBudget(daily_usd=1.0)}))


def test_a_budget_under_a_cent_is_named_as_it_is_not_as_zero(
    start: Callable[..., GatewayServer],
) -> None:
    # A trial budget of $0.0005 was reported as "the daily total budget of $0.00 is reached".
    gw = start(GuardSettings(daily_usd=0.0005))
    with pytest.raises(anthropic.APIStatusError) as caught:
        _claude(gw.url, max_tokens=BIG)
    message = caught.value.body["error"]["message"]  # type: ignore[index]
    assert "the daily total budget of $0.0005 is reached ($0.00 spent or in flight" in message
    # what breaks it is the request itself, whose estimate the message names
    estimate = message.split("and a request estimated at up to $", 1)[1].split(")", 1)[0]
    assert float(estimate) > 0.0005


def test_a_model_without_a_price_is_named_once_as_unguarded(
    start: Callable[..., GatewayServer], caplog: pytest.LogCaptureFixture
) -> None:
    # Claude Code's default model was newer than the bundled template: with a budget set, its
    # requests went through at $0 and nothing said so.
    caplog.set_level(logging.WARNING, logger="driftgate.guard")
    gw = start(GuardSettings(daily_usd=1.0))
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0)
    for _ in range(3):
        client.chat.completions.create(
            model="gpt-unpriced-test", messages=[{"role": "user", "content": "hi"}]
        )
    _claude(gw.url)  # a priced model: not named
    named = [r.getMessage() for r in caplog.records if "has no price" in r.getMessage()]
    assert named == [
        "spend guard: model 'gpt-unpriced-test' has no price in the templates, so its requests "
        "count $0 against the budgets; add its prices in a template overlay (templates_dir) to "
        "guard it"
    ]
