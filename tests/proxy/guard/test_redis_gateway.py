"""Gateways sharing one budget in a real redis-server: concurrency, halt, outages, a killed gateway."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from driftgate.proxy.config import Config, load_config
from driftgate.proxy.errors import ConfigError
from driftgate.proxy.guard.ledger import DAY, TOTAL, Limit
from driftgate.proxy.guard.redis_store import RedisGuardStore
from driftgate.proxy.guard.settings import GuardSettings, StateSettings
from driftgate.proxy.server import GatewayServer
from tests.fakes import Behaviour
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.redis_server import RedisServer

MODEL = "claude-sonnet-4-6"  # $3 / $15 / cache write $3.75 per MTok in the bundled template
BOUND = 20.0  # generous upper bound for anything the test waits on


@pytest.fixture
def start(
    tmp_path: Path, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> Iterator[Callable[..., GatewayServer]]:
    """Start gateways, each with its own home, sharing the Redis state they are given."""
    servers: list[GatewayServer] = []

    def boot(guard: GuardSettings, state: StateSettings) -> GatewayServer:
        home = tmp_path / f"home{len(servers)}"
        home.mkdir()
        config = Config(
            home=home,
            path=home / "config.toml",
            port=0,
            backends=(fake_anthropic.backend(), fake_openai.backend(models=["gpt-*"])),
            guard=guard,
            state=state,
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


def _state(server: RedisServer, **kw: Any) -> StateSettings:
    kw = {"timeout_seconds": 5.0, "retry_seconds": 0.05, **kw}  # a loaded machine is no outage
    return StateSettings(redis_url=server.url, key_prefix=f"g{uuid.uuid4().hex[:8]}:", **kw)


def _claude(url: str, max_tokens: int = 64) -> Any:
    client = anthropic.Anthropic(base_url=url, api_key="sk-client", max_retries=0)
    return client.messages.create(
        model=MODEL, max_tokens=max_tokens, messages=[{"role": "user", "content": "hi"}]
    )


def _try(url: str) -> int:
    try:
        _claude(url, max_tokens=4000)
    except anthropic.APIStatusError as exc:
        return exc.status_code
    except anthropic.APIConnectionError:
        return 0  # the gateway died under it
    return 200


def _guard(url: str) -> dict[str, Any]:
    doc: dict[str, Any] = httpx.get(f"{url}/health", timeout=BOUND).json()
    return doc


def _until(what: Callable[[], Any], why: str) -> Any:
    """Poll `what` until it is truthy (the gateway's background work is asynchronous)."""
    deadline = time.monotonic() + BOUND
    while not (got := what()):
        assert time.monotonic() < deadline, why
        time.sleep(0.02)
    return got


def _total_spent(doc: dict[str, Any]) -> float:
    spent: float = next(x for x in doc["guard"]["limits"] if x["backend"] is None)["spent_usd"]
    return spent


def test_two_gateways_never_overspend_one_budget(
    start: Callable[..., GatewayServer], fake_anthropic: FakeAnthropic, shared_redis: RedisServer
) -> None:
    # Each request reserves ~$0.060 (4,000 output tokens at $15/MTok) and costs ~$0.057 (15,000
    # cache-write tokens). Counted apart, two gateways would each let 8 through: 16 in all.
    fake_anthropic.cache_creation_tokens = 15_000
    state = _state(shared_redis)
    guard = GuardSettings(daily_usd=0.5, action="halt", cooldown_minutes=0)
    gateways = [start(guard, state), start(guard, state)]
    urls = [gw.url for gw in gateways] * 12
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(_try, urls))
    assert set(results) <= {200, 503}
    assert 1 <= results.count(200) <= 8
    for gw in gateways:
        doc = _until(
            lambda gw=gw: (d := _guard(gw.url))["guard"]["in_flight_usd"] == 0 and d, "settled"
        )
        assert 0.05 < _total_spent(doc) <= 0.5
        assert doc["guard"]["store"]["kind"] == "redis" and doc["guard"]["store"]["reachable"]
        assert "redis://127.0.0.1" in doc["guard"]["store"]["url"]


def test_a_halt_on_one_gateway_is_seen_by_the_other_and_a_resume_on_either_lifts_it(
    start: Callable[..., GatewayServer], fake_anthropic: FakeAnthropic, shared_redis: RedisServer
) -> None:
    fake_anthropic.cache_creation_tokens = 400_000  # $1.50 a request
    state = _state(shared_redis)
    guard = GuardSettings(daily_usd=1.0, cooldown_minutes=0)
    a, b = start(guard, state), start(guard, state)
    assert _claude(a.url).content
    _until(lambda: _total_spent(_guard(b.url)) > 1.0, "b sees a's spend")
    with pytest.raises(anthropic.APIStatusError):
        _claude(a.url)  # a trips the halt
    with pytest.raises(anthropic.APIStatusError) as caught:
        _claude(b.url)
    assert "daily total budget of $1.00" in caught.value.response.json()["error"]["message"]
    assert _guard(b.url)["status"] == "halted"
    metrics = httpx.get(f"{b.url}/metrics", timeout=BOUND).text
    assert 'driftgate_guard_state{driftgate_guard_state="halted"} 1.0' in metrics
    assert "driftgate_guard_store_up 1.0" in metrics

    resumed = httpx.post(f"{b.url}/guard/resume", timeout=BOUND).json()
    assert resumed["resumed"] is True
    assert _guard(a.url)["guard"]["state"] == "ok"
    metrics = httpx.get(f"{a.url}/metrics", timeout=BOUND).text  # a tripped it; b lifted it
    assert 'driftgate_guard_state{driftgate_guard_state="ok"} 1.0' in metrics
    assert _claude(a.url).content  # spend before the resume no longer counts, on a too


@pytest.mark.parametrize("fail", ["open", "closed"])
def test_redis_restarted_mid_run_fails_as_configured_then_recovers(
    fail: str,
    start: Callable[..., GatewayServer],
    fake_anthropic: FakeAnthropic,
    redis_server: RedisServer,
) -> None:
    fake_anthropic.cache_creation_tokens = 40_000  # $0.15 a request
    gw = start(GuardSettings(daily_usd=10.0), _state(redis_server, fail=fail))
    assert _claude(gw.url).content
    redis_server.stop()

    if fail == "open":
        assert _claude(gw.url).content  # let through, and counted
    else:
        with pytest.raises(anthropic.APIStatusError) as caught:
            _claude(gw.url)
        assert caught.value.status_code == 503
        message = caught.value.response.json()["error"]["message"]
        assert "cannot reach its store" in message and 'fail = "closed"' in message
        chat = openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0)
        with pytest.raises(openai.APIStatusError) as caught_openai:
            chat.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
            )
        assert caught_openai.value.response.json()["error"]["code"] == "spend_guard_unavailable"
    doc = _guard(gw.url)
    assert doc["status"] == "degraded" and doc["guard"]["state"] == "store_unreachable"
    store = doc["guard"]["store"]
    assert store["reachable"] is False and store["fail"] == fail
    (said,) = [p for p in doc["problems"] if p.startswith("spend guard")]
    then = "requests go unguarded" if fail == "open" else "completions are refused"
    assert "connection refused" in said and then in said
    assert store["unguarded_requests"] == (1 if fail == "open" else 0)
    metrics = httpx.get(f"{gw.url}/metrics", timeout=BOUND).text
    assert "driftgate_guard_store_up 0.0" in metrics
    assert f"driftgate_guard_unguarded_requests_total {1.0 if fail == 'open' else 0.0}" in metrics

    redis_server.start()  # empty: no persistence, like a Redis that lost its data
    doc = _until(lambda: (d := _guard(gw.url))["guard"].get("store", {}).get("reachable") and d,
                 "the gateway never found Redis again")  # fmt: skip
    assert doc["status"] == "ok"
    if fail == "open":  # the request let through has its cost recorded once Redis is back
        _until(lambda: _total_spent(_guard(gw.url)) > 0.1, "the unguarded spend was not sent")
    assert _claude(gw.url).content  # guarded again, without a restart


def test_a_redis_that_may_evict_the_guard_s_keys_is_named_in_health_until_it_no_longer_may(
    start: Callable[..., GatewayServer],
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import redis

    with redis.Redis.from_url(redis_server.url) as client:
        client.config_set("maxmemory", "64mb")
        client.config_set("maxmemory-policy", "volatile-lru")
    with caplog.at_level("WARNING", logger="driftgate.guard"):
        gw = start(GuardSettings(daily_usd=10.0), _state(redis_server))
    doc = _guard(gw.url)
    assert doc["status"] == "ok"  # the guard works; Redis may forget what it counted
    evicts = doc["guard"]["store"]["eviction"]
    assert evicts.startswith("Redis evicts keys with an expiry when it reaches maxmemory 64 MB")
    (said,) = [p for p in doc["problems"] if p.startswith("spend guard")]
    assert evicts in said and "maxmemory-policy noeviction" in said
    assert sum("volatile-lru" in r.getMessage() for r in caplog.records) == 1

    redis_server.stop()  # started again with Redis's defaults: noeviction
    assert _claude(gw.url).content  # fail open: let through; the probe finds Redis back
    redis_server.start()
    doc = _until(lambda: (d := _guard(gw.url))["guard"]["store"].get("reachable") and d,
                 "the gateway never found Redis again")  # fmt: skip
    _until(lambda: "eviction" not in _guard(gw.url)["guard"]["store"], "still said to evict")
    assert "problems" not in _guard(gw.url)


def test_a_reload_reads_the_eviction_policy_again(
    start: Callable[..., GatewayServer], redis_server: RedisServer
) -> None:
    import redis

    from driftgate.proxy.app import GATEWAY_KEY

    with redis.Redis.from_url(redis_server.url) as client:
        client.config_set("maxmemory", "64mb")
        client.config_set("maxmemory-policy", "allkeys-random")
        gw = start(GuardSettings(daily_usd=10.0), _state(redis_server))
        assert "eviction" in _guard(gw.url)["guard"]["store"]
        client.config_set("maxmemory-policy", "noeviction")  # the fix the warning names
    assert "eviction" in _guard(gw.url)["guard"]["store"]  # read when it connected

    async def reload() -> None:
        assert gw.app is not None
        gw.app[GATEWAY_KEY].reload(gw.config)

    assert gw._loop is not None
    asyncio.run_coroutine_threadsafe(reload(), gw._loop).result(BOUND)
    _until(lambda: "eviction" not in _guard(gw.url)["guard"]["store"], "still said to evict")
    assert "problems" not in _guard(gw.url)


def test_a_gateway_killed_mid_request_leaks_no_reservation_after_expiry(
    tmp_path: Path, fake_anthropic: FakeAnthropic, redis_server: RedisServer
) -> None:
    prefix = f"k{uuid.uuid4().hex[:8]}:"
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        textwrap.dedent(f"""\
        [gateway]
        port = 0

        [backends.anthropic]
        kind = "anthropic"
        base_url = "{fake_anthropic.url}"
        key_env = "FAKE_ANTHROPIC_KEY"

        [guard]
        daily_usd = 5

        [state]
        redis_url = "{redis_server.url}"
        key_prefix = "{prefix}"
        reservation_seconds = 1
        timeout_seconds = 5
        """)
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env |= {"DRIFTGATE_HOME": str(home), "FAKE_ANTHROPIC_KEY": "sk-ant-fake-test-key"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "driftgate.proxy.cli", "proxy"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on " in line, line
        url = line.split("listening on ")[1].split()[0]
        fake_anthropic.script(Behaviour.stall(BOUND))
        threading.Thread(target=_try, args=(url,), daemon=True).start()
        store = RedisGuardStore(  # a loaded machine is no outage (as _gateway's stores)
            StateSettings(redis_url=redis_server.url, key_prefix=prefix, timeout_seconds=5.0),
            lambda _b: (),
        )
        limits = (Limit(TOTAL, DAY, 5.0),)

        async def in_flight(now: float) -> float:
            return (await store.snapshot(limits, now)).in_flight

        loop = asyncio.new_event_loop()
        try:
            _until(lambda: loop.run_until_complete(in_flight(time.time())) > 0, "no reservation")
            proc.send_signal(signal.SIGKILL)  # mid-request: nothing settles its reservation
            proc.wait(BOUND)
            assert loop.run_until_complete(in_flight(time.time() + 2)) == 0.0  # after expiry
            loop.run_until_complete(store.close())
        finally:
            loop.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_redis_url_that_is_not_one_is_refused_at_start(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[state]\nredis_url = "http://cache:6379"\n')
    with pytest.raises(ConfigError, match=r"\[state\] redis_url: must start with redis://"):
        load_config({}, path)


def test_without_the_redis_package_the_start_names_the_install_command(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[guard]\ndaily_usd = 1\n\n[state]\nredis_url = "redis://127.0.0.1:1/0"\n')
    script = textwrap.dedent(f"""\
        import sys
        sys.modules["redis"] = None  # as if driftgate[redis] was not installed
        from pathlib import Path
        from driftgate.proxy.app import create_app
        from driftgate.proxy.config import load_config
        from driftgate.proxy.errors import ConfigError
        try:
            create_app(load_config({{}}, Path({str(path)!r})), env={{}})
        except ConfigError as exc:
            print(exc)
        """)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "pip install 'driftgate[redis]'" in out and "[state] redis_url" in out


def test_resume_with_no_gateway_running_lifts_the_halt_in_redis(
    tmp_path: Path, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from driftgate.proxy.cli import main
    from driftgate.proxy.guard.ledger import Halt
    from tests.fakes.server_thread import closed_port

    state = _state(redis_server)
    path = tmp_path / "config.toml"
    path.write_text(
        f'[guard]\ndaily_usd = 1\n\n[state]\nredis_url = "{redis_server.url}"\n'
        f'key_prefix = "{state.key_prefix}"\n'
    )

    async def halt_then_ask() -> None:
        store = RedisGuardStore(state, lambda _b: ())
        store.halt(Halt("budget", since=time.time(), until=None))
        await store.flush()
        await store.close()

    asyncio.run(halt_then_ask())
    nobody = f"http://127.0.0.1:{closed_port()}"
    assert main(["--config", str(path), "resume", "--url", nobody]) == 0
    assert "the halt is lifted in Redis for every gateway" in capsys.readouterr().out

    async def halted() -> bool:
        store = RedisGuardStore(state, lambda _b: ())
        try:
            return await store.halted(time.time()) is not None
        finally:
            await store.close()

    assert asyncio.run(halted()) is False


def test_busy_gateways_count_every_request_once_and_hold_nothing_when_idle(
    start: Callable[..., GatewayServer], shared_redis: RedisServer
) -> None:
    # A budget far above what the run spends: concurrent requests make each gateway take leases
    # (a slice of the budget it admits requests from itself), given back once they are idle.
    state = _state(shared_redis)
    guard = GuardSettings(daily_usd=1000.0)
    gateways = [start(guard, state), start(guard, state)]
    assert _claude(gateways[0].url).content
    one = _until(lambda: (d := _guard(gateways[0].url))["guard"]["in_flight_usd"] == 0 and d,
                 "the first request settled")  # fmt: skip
    each = _total_spent(one)
    assert each > 0
    urls = [gw.url for gw in gateways] * 20
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        assert set(pool.map(_try, urls)) == {200}
    for gw in gateways:
        doc = _until(
            lambda gw=gw: (d := _guard(gw.url))["guard"]["in_flight_usd"] == 0 and d, "idle"
        )
        # /health rounds to 6 places; one request missing or counted twice is 1/41 off
        assert _total_spent(doc) == pytest.approx(41 * each, rel=0.005)
