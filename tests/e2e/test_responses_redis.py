"""Stored Responses conversations in Redis ([state] redis_url): two gateways (two hosts behind a
load balancer) on one real redis-server, the official openai SDK as the client; expiry; Redis down
with fail open and fail closed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from driftgate.proxy.config import Config
from driftgate.proxy.guard.settings import StateSettings
from driftgate.proxy.responses.settings import ResponsesSettings
from driftgate.proxy.server import GatewayServer
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.redis_server import RedisServer, running_redis

MODEL = "claude-sonnet-4-6"
BOUND = 20.0


class WallClock:
    """The gateways' wall clock, moved by the test (it starts now: Redis expires keys by it)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def start(tmp_path: Path, fake_anthropic: FakeAnthropic) -> Iterator[Callable[..., GatewayServer]]:
    """Start gateways, each with its own home, sharing the Redis state they are given."""
    servers: list[GatewayServer] = []

    def boot(state: StateSettings, **kw: Any) -> GatewayServer:
        home = tmp_path / f"home{len(servers)}"
        home.mkdir()
        app_kwargs = {"wall": kw.pop("wall")} if "wall" in kw else {}
        config = Config(
            home=home,
            path=home / "config.toml",
            port=0,
            backends=(fake_anthropic.backend(),),
            state=state,
            **kw,
        )
        server = GatewayServer(config, env={}, **app_kwargs)
        server.start()
        servers.append(server)
        return server

    try:
        yield boot
    finally:
        for server in reversed(servers):
            server.stop()


def _state(server: RedisServer, **kw: Any) -> StateSettings:
    kw = {"timeout_seconds": 2.0, "retry_seconds": 0.05, **kw}  # a loaded machine is no outage
    return StateSettings(redis_url=server.url, key_prefix=f"c{uuid.uuid4().hex[:8]}:", **kw)


def _client(gw: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-client", max_retries=0)


def _health(gw: GatewayServer) -> dict[str, Any]:
    doc: dict[str, Any] = httpx.get(f"{gw.url}/health", timeout=BOUND).json()
    return doc


def test_two_gateways_continue_each_others_conversations(
    start: Callable[..., GatewayServer], fake_anthropic: FakeAnthropic, shared_redis: RedisServer
) -> None:
    state = _state(shared_redis)
    a, b = start(state), start(state)
    first = _client(a).responses.create(model=MODEL, input="hello")
    second = _client(b).responses.create(model=MODEL, previous_response_id=first.id, input="two")
    sent = fake_anthropic.last.json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert second.output_text == "echo: two"
    events = list(
        _client(a).responses.create(
            model=MODEL, previous_response_id=second.id, input="three", stream=True
        )
    )
    third = events[-1].response
    assert events[-1].type == "response.completed" and third.output_text == "echo: three"
    assert len(fake_anthropic.last.json["messages"]) == 5
    # The item a host filed, referenced on the other.
    message = next(o for o in third.output if o.type == "message")
    items: Any = [
        {"role": "user", "content": "w"},
        {"type": "item_reference", "id": message.id},
        {"role": "user", "content": "x"},
    ]
    assert _client(b).responses.create(model=MODEL, input=items).output_text == "echo: x"
    sent = fake_anthropic.last.json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert "echo: three" in str(sent[1]["content"])
    with pytest.raises(openai.BadRequestError) as info:
        _client(b).responses.create(model=MODEL, previous_response_id="resp_nope", input="hi")
    assert info.value.code == "previous_response_not_found"
    doc = _health(b)["responses_store"]
    assert doc["kind"] == "redis" and doc["reachable"] and "redis://127.0.0.1" in doc["url"]


def test_the_ttl_and_the_bounds_hold_across_gateways(
    start: Callable[..., GatewayServer], shared_redis: RedisServer
) -> None:
    clock = WallClock()
    state = _state(shared_redis)
    bounds = ResponsesSettings(store_ttl_seconds=60, store_max_items=2)
    a = start(state, responses=bounds, wall=clock)
    b = start(state, responses=bounds, wall=clock)

    def known(gw: GatewayServer, response_id: str) -> bool:
        try:
            _client(gw).responses.create(
                model=MODEL, previous_response_id=response_id, input="more", store=False
            )
        except openai.BadRequestError as exc:
            assert exc.code == "previous_response_not_found"
            return False
        return True

    first = _client(a).responses.create(model=MODEL, input="one")
    clock.now += 59
    assert known(b, first.id)
    clock.now += 2  # past store_ttl_seconds: expired for every gateway
    assert not known(a, first.id) and not known(b, first.id)
    ids = [_client((a, b)[n % 2]).responses.create(model=MODEL, input=f"t{n}").id for n in range(3)]
    assert [known(b, i) for i in ids] == [False, True, True]  # two kept in all, oldest gone


def test_redis_down_fails_open_then_recovers(
    start: Callable[..., GatewayServer], tmp_path: Path
) -> None:
    with running_redis(tmp_path / "redis") as server:
        state = _state(server, fail="open")
        a, b = start(state), start(state)
        first = _client(a).responses.create(model=MODEL, input="hello")
        server.stop()
        # a filed the turn itself: it still continues it. b cannot know it and says why.
        assert (
            _client(a)
            .responses.create(model=MODEL, previous_response_id=first.id, input="two")
            .output_text
            == "echo: two"
        )
        with pytest.raises(openai.BadRequestError) as info:
            _client(b).responses.create(model=MODEL, previous_response_id=first.id, input="two")
        assert info.value.code == "previous_response_not_found"
        assert "conversation store could not be read: Redis at redis://" in str(info.value.message)
        assert _client(b).responses.create(model=MODEL, input="new").output_text == "echo: new"
        health = _health(b)
        doc = health["responses_store"]
        assert doc["reachable"] is False and doc["kept_in_memory_only"] == 1
        assert health["status"] == "degraded"
        # Degraded says why, in words, among the problems.
        (said,) = [p for p in health["problems"] if p.startswith("stored Responses")]
        assert "connection refused" in said and "only on the host that stored them" in said
        server.start()
        deadline = time.monotonic() + BOUND
        while not all(_health(gw)["responses_store"]["reachable"] for gw in (a, b)):
            assert time.monotonic() < deadline, "the gateways never saw Redis come back"
            time.sleep(0.05)
        again = _client(b).responses.create(model=MODEL, input="back")
        assert (
            _client(a)
            .responses.create(model=MODEL, previous_response_id=again.id, input="on a")
            .output_text
            == "echo: on a"
        )


def test_redis_down_fails_closed_with_a_503_in_openais_shape(
    start: Callable[..., GatewayServer], tmp_path: Path
) -> None:
    with running_redis(tmp_path / "redis") as server:
        state = _state(server, fail="closed")
        a = start(state)
        first = _client(a).responses.create(model=MODEL, input="hello")
        server.stop()
        for _ in range(2):  # the failing call, then while it is known down
            with pytest.raises(openai.InternalServerError) as info:
                _client(a).responses.create(model=MODEL, previous_response_id=first.id, input="x")
            assert info.value.status_code == 503
            assert info.value.body["code"] == "response_store_unavailable"  # type: ignore[index]
            assert 'fail = "closed"' in info.value.body["message"]  # type: ignore[index]
        # Known down: a request that would be stored is refused too; one that is not, answered.
        with pytest.raises(openai.InternalServerError):
            _client(a).responses.create(model=MODEL, input="new")
        assert (
            _client(a).responses.create(model=MODEL, input="new", store=False).output_text
            == "echo: new"
        )
