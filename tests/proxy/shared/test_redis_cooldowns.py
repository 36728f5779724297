"""Backend cooldowns shared by two real gateways on one real redis-server ([state] redis_url),
and the board's subscription surviving a closed connection."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvloop
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from driftgate.proxy.cooldown import Cooldowns
from driftgate.proxy.guard.settings import StateSettings
from driftgate.proxy.shared.redis_cooldowns import RedisCooldowns
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.redis_server import RedisServer
from tests.fakes.scripted import Behaviour

SONNET = "claude-sonnet-4-6"
BODY = {"model": SONNET, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
BOUND = 20.0  # generous upper bound for anything the test waits on
Factory = Callable[..., Any]


@pytest.fixture
def second() -> Iterator[FakeAnthropic]:
    """Another fake Anthropic upstream, for the fallback route."""
    fake = FakeAnthropic().start()
    yield fake
    fake.stop()


def _boot(
    factory: Factory, primary: FakeAnthropic, second: FakeAnthropic, state: StateSettings
) -> Any:
    return factory(
        backends=[primary.backend("primary"), second.backend("second", models=["never-*"])],
        fallbacks={SONNET: (f"second:{SONNET}",)},
        state=state,
        cooldown_seconds=30.0,
    )


def _state(server: RedisServer) -> StateSettings:
    return StateSettings(
        redis_url=server.url,
        key_prefix=f"c{uuid.uuid4().hex[:8]}:",
        timeout_seconds=5.0,  # a loaded machine is no outage
        retry_seconds=0.05,
    )


def _health(url: str) -> dict[str, Any]:
    doc: dict[str, Any] = httpx.get(f"{url}/health", timeout=BOUND).json()
    return doc


def _primary(url: str) -> dict[str, Any]:
    entry: dict[str, Any] = next(b for b in _health(url)["backends"] if b["name"] == "primary")
    return entry


def _until(what: Callable[[], Any], why: str) -> Any:
    """Poll `what` until it is truthy (the other gateway hears of it asynchronously)."""
    deadline = time.monotonic() + BOUND
    while not (got := what()):
        assert time.monotonic() < deadline, why
        time.sleep(0.02)
    return got


def _subscribed(url: str) -> None:
    _until(lambda: _health(url)["cooldowns"]["reachable"], "the gateway never reached Redis")


def _pttl(server: RedisServer, key: str) -> int:
    """PTTL of `key`, asked with a raw RESP command (what any client would see)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=BOUND) as sock:
        command = f"*2\r\n$4\r\nPTTL\r\n${len(key)}\r\n{key}\r\n".encode()
        sock.sendall(command)
        reply = sock.recv(64)
    assert reply.startswith(b":"), reply
    return int(reply[1:].strip())


def test_a_backend_that_fails_on_one_gateway_cools_on_the_other(
    gateway_factory: Factory,
    fake_anthropic: FakeAnthropic,
    second: FakeAnthropic,
    shared_redis: RedisServer,
) -> None:
    state = _state(shared_redis)
    a = _boot(gateway_factory, fake_anthropic, second, state)
    b = _boot(gateway_factory, fake_anthropic, second, state)
    _subscribed(b.url)
    assert _health(a.url)["cooldowns"]["shared"] == "redis"

    fake_anthropic.script(Behaviour.status(500))
    r = httpx.post(a.url + "/v1/messages", json=BODY, timeout=BOUND)
    assert r.status_code == 200 and r.headers["x-driftgate-backend"] == "second"
    entry = _until(lambda: (e := _primary(b.url))["state"] == "cooling" and e, "b never heard")
    assert 10 < entry["cooldown_seconds"] <= 30  # the 30 s cooldown (minus a slow machine)
    assert 10_000 < _pttl(shared_redis, f"{state.key_prefix}cool:primary") <= 30_000

    r = httpx.post(b.url + "/v1/messages", json=BODY, timeout=BOUND)
    assert r.headers["x-driftgate-backend"] == "second"  # b did not even try the primary
    assert len(fake_anthropic.requests) == 1 and len(second.requests) == 2


def test_retry_after_is_honoured_and_capped_on_every_gateway(
    gateway_factory: Factory,
    fake_anthropic: FakeAnthropic,
    second: FakeAnthropic,
    shared_redis: RedisServer,
) -> None:
    state = _state(shared_redis)
    a = _boot(gateway_factory, fake_anthropic, second, state)
    b = _boot(gateway_factory, fake_anthropic, second, state)
    _subscribed(b.url)
    fake_anthropic.script(Behaviour.status(429, headers={"retry-after": "999999"}))
    httpx.post(a.url + "/v1/messages", json=BODY, timeout=BOUND)
    entry = _until(lambda: (e := _primary(b.url))["state"] == "cooling" and e, "b never heard")
    assert 3000 < entry["cooldown_seconds"] <= 3600  # Retry-After, capped at an hour

    c = _boot(gateway_factory, fake_anthropic, second, state)  # started later: reads the key
    _until(lambda: _primary(c.url)["state"] == "cooling", "c never caught up")
    assert 3000 < _primary(c.url)["cooldown_seconds"] <= 3600
    key = f"{state.key_prefix}cool:primary"
    assert 3_000_000 < _pttl(shared_redis, key) <= 3_600_000


def test_the_backend_answering_again_clears_its_cooldown_everywhere(
    gateway_factory: Factory,
    fake_anthropic: FakeAnthropic,
    second: FakeAnthropic,
    shared_redis: RedisServer,
) -> None:
    state = _state(shared_redis)
    a = gateway_factory(backends=[fake_anthropic.backend("primary")], state=state)
    b = gateway_factory(backends=[fake_anthropic.backend("primary")], state=state)
    _subscribed(a.url)
    _subscribed(b.url)
    fake_anthropic.script(Behaviour.status(500))
    assert httpx.post(b.url + "/v1/messages", json=BODY, timeout=BOUND).status_code == 500
    _until(lambda: _primary(a.url)["state"] == "cooling", "a never heard")
    # The only route, cooling, is still tried (else one error is a 30 s outage); it answers.
    assert httpx.post(a.url + "/v1/messages", json=BODY, timeout=BOUND).status_code == 200
    _until(lambda: _primary(b.url)["state"] == "ok", "b never heard the backend was back")
    assert _pttl(shared_redis, f"{state.key_prefix}cool:primary") == -2  # no key


def test_redis_gone_keeps_cooldowns_per_gateway_and_back_shares_them_again(
    gateway_factory: Factory,
    fake_anthropic: FakeAnthropic,
    second: FakeAnthropic,
    redis_server: RedisServer,
) -> None:
    state = _state(redis_server)
    a = _boot(gateway_factory, fake_anthropic, second, state)
    b = _boot(gateway_factory, fake_anthropic, second, state)
    _subscribed(b.url)
    redis_server.stop()
    fake_anthropic.script(Behaviour.status(500))
    r = httpx.post(a.url + "/v1/messages", json=BODY, timeout=BOUND)
    assert r.headers["x-driftgate-backend"] == "second"  # no request waits for Redis
    assert _primary(a.url)["state"] == "cooling"
    _until(lambda: not _health(b.url)["cooldowns"]["reachable"], "b never noticed")
    assert _health(b.url)["status"] == "ok"  # requests are served; cooldowns are per gateway
    assert _primary(b.url)["state"] == "ok"

    redis_server.start()  # empty: it lost what it held
    _subscribed(b.url)
    fake_anthropic.script(Behaviour.status(503))
    r = httpx.post(b.url + "/v1/messages", json=BODY, timeout=BOUND)
    assert r.headers["x-driftgate-backend"] == "second"
    key = f"{state.key_prefix}cool:primary"
    _until(lambda: _pttl(redis_server, key) > 10_000, "b's cooldown never reached Redis")


class _ClosedOnce(PubSub):
    """A real subscription whose second read fails as uvloop fails a write on a closed
    connection (RuntimeError, "the handler is closed"), as after a Redis restart."""

    failures = 0

    async def get_message(self, *args: Any, **kwargs: Any) -> Any:
        got = await super().get_message(*args, **kwargs)
        if got is None and not _ClosedOnce.failures:
            _ClosedOnce.failures += 1
            raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")
        return got


class _Listener(Redis):
    def pubsub(self, **kwargs: Any) -> PubSub:
        return _ClosedOnce(self.connection_pool, **kwargs)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        raise RuntimeError("the handler is closed")  # and closing it fails the same way


def test_the_subscription_outlives_a_closed_connection_error_and_closes_cleanly(
    redis_server: RedisServer,
) -> None:
    state = _state(redis_server)

    async def run() -> tuple[float, int]:
        ours, theirs = Cooldowns(30.0), Cooldowns(30.0)
        listener = _Listener.from_url(redis_server.url)
        board = RedisCooldowns(state, ours, lambda: ["primary"], listener=listener)
        other = RedisCooldowns(state, theirs, lambda: ["primary"])
        await board.start()
        await asyncio.wait_for(board.subscribed.wait(), BOUND)
        while not _ClosedOnce.failures:  # the listener's next idle read fails once...
            await asyncio.sleep(0.01)
        await asyncio.wait_for(board.subscribed.wait(), BOUND)  # ...and it subscribes again
        other.shared("primary", 20.0)
        deadline = time.monotonic() + BOUND
        while not ours.cooling("primary") and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await other.close()
        await board.close()  # the listener client's failing close is not the gateway's stop
        return ours.cooling("primary"), _ClosedOnce.failures

    cooling, failures = uvloop.run(run())
    assert failures == 1
    assert 10.0 < cooling <= 20.0  # heard from the other gateway after the failure
