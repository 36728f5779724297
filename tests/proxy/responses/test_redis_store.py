"""The Redis conversation store against a real redis-server: several `RedisConversations` on one
prefix are several gateway hosts. Times are passed in (the gateway's wall clock)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from driftgate.proxy.errors import InvalidRequest
from driftgate.proxy.guard.settings import StateSettings
from driftgate.proxy.responses.redis_store import RedisConversations
from driftgate.proxy.responses.settings import ResponsesSettings
from driftgate.proxy.responses.turns import StoreUnavailable
from tests.fakes.redis_server import RedisServer


class Clock:
    """The gateway's wall clock, moved by the test (it starts now: Redis expires keys by it)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


def run(
    server: RedisServer,
    n: int,
    body: Callable[..., Awaitable[None]],
    clock: Callable[[], float] | None = None,
    *,
    state: dict[str, Any] | None = None,
    **bounds: Any,
) -> str:
    """`body(*hosts)`: `n` stores sharing a fresh key prefix, closed afterwards; the prefix."""
    prefix = f"r{uuid.uuid4().hex[:8]}:"
    kw = {"timeout_seconds": 5.0, "retry_seconds": 0.05, **(state or {})}
    settings = StateSettings(redis_url=server.url, key_prefix=prefix, **kw)

    async def main() -> None:
        hosts = [
            RedisConversations(settings, ResponsesSettings(**bounds), clock=clock or Clock())
            for _ in range(n)
        ]
        try:
            await body(*hosts)
        finally:
            for h in hosts:
                await h.aclose()

    asyncio.run(main())
    return prefix


async def answered(host: RedisConversations, body: dict[str, Any], rid: str, text: str) -> None:
    expanded = host.expand(body, await host.load(body))
    out = {"id": f"msg_{rid}", "type": "message", "role": "assistant",
           "content": [{"type": "output_text", "text": text}]}  # fmt: skip
    await host.file(expanded, {"id": rid, "output": [out]})


async def texts(host: RedisConversations, body: dict[str, Any]) -> list[str]:
    expanded = host.expand(body, await host.load(body))
    return [
        i["content"] if isinstance(i["content"], str) else i["content"][0]["text"]
        for i in expanded.body["input"]
    ]


async def stored(host: RedisConversations, rid: str) -> bool:
    try:
        await texts(host, {"input": "more", "previous_response_id": rid})
    except InvalidRequest as exc:
        assert exc.openai_code == "previous_response_not_found"
        return False
    return True


def test_every_host_resolves_every_turn_and_item(shared_redis: RedisServer) -> None:
    async def body(a: RedisConversations, b: RedisConversations) -> None:
        await answered(a, {"input": "one"}, "resp_1", "first")
        await answered(b, {"input": "two", "previous_response_id": "resp_1"}, "resp_2", "second")
        await answered(a, {"input": "three", "previous_response_id": "resp_2"}, "resp_3", "third")
        want = ["one", "first", "two", "second", "three", "third", "four"]
        for host in (a, b):
            assert await texts(host, {"input": "four", "previous_response_id": "resp_3"}) == want
            ref = {"input": [{"type": "item_reference", "id": "msg_resp_2"}]}
            assert await texts(host, ref) == ["second"]
        with pytest.raises(InvalidRequest, match="Previous response with id 'resp_9' not found"):
            await texts(b, {"input": "x", "previous_response_id": "resp_9"})
        with pytest.raises(InvalidRequest, match="Item with id 'msg_9' not found"):
            await texts(b, {"input": [{"type": "item_reference", "id": "msg_9"}]})
        assert await a.load({"input": "hi"}) is None  # refers to nothing: Redis is not asked

    run(shared_redis, 2, body)


def test_keys_live_under_the_prefix_expire_with_the_ttl_and_hold_no_duplicate(
    shared_redis: RedisServer,
) -> None:
    clock = Clock()
    start = clock.now

    async def body(a: RedisConversations, b: RedisConversations) -> None:
        await answered(a, {"input": "one"}, "resp_1", "first")
        expanded = b.expand({"input": "one"})
        await b.file(expanded, {"id": "resp_1", "output": []})  # the same id again: not refiled
        clock.now += 59
        assert await stored(b, "resp_1")
        clock.now += 2  # past store_ttl_seconds
        assert not await stored(a, "resp_1") and not await stored(b, "resp_1")

    prefix = run(shared_redis, 2, body, clock, store_ttl_seconds=60)

    async def check() -> None:
        redis = Redis.from_url(shared_redis.url)
        try:
            keys = sorted(k.decode() for k in await redis.keys(f"{prefix}*"))
            assert keys == [
                f"{prefix}resp:bytes", f"{prefix}resp:i:msg_resp_1", f"{prefix}resp:order",
                f"{prefix}resp:size", f"{prefix}resp:t:resp_1",
            ]  # fmt: skip
            turn = await redis.hgetall(f"{prefix}resp:t:resp_1")
            assert b"first" in turn[b"i"]  # the first filing stayed
            # Redis itself forgets the turn once its TTL (counted from the request) is over.
            expire_at = await redis.pexpiretime(f"{prefix}resp:t:resp_1")
            assert expire_at == int((start + 60) * 1000)
            assert await redis.zcard(f"{prefix}resp:order") == 1
        finally:
            await redis.aclose()

    asyncio.run(check())


def test_the_bounds_count_every_hosts_turns_oldest_first(shared_redis: RedisServer) -> None:
    clock = Clock()

    async def body(a: RedisConversations, b: RedisConversations) -> None:
        for n in range(4):
            clock.now += 1
            await answered((a, b)[n % 2], {"input": str(n)}, f"resp_{n}", f"answer {n}")
        assert [await stored(a, f"resp_{n}") for n in range(4)] == [False, True, True, True]
        with pytest.raises(InvalidRequest):  # the evicted turn's items went with it
            await texts(b, {"input": [{"type": "item_reference", "id": "msg_resp_0"}]})
        for n in range(4, 6):
            clock.now += 1
            await answered(b, {"input": str(n)}, f"resp_{n}", str(n) * 2500)
        # 4096 bytes: the two big turns do not both fit; everything older went first.
        assert [await stored(a, f"resp_{n}") for n in range(6)] == [False] * 5 + [True]

    run(shared_redis, 2, body, clock, store_max_items=3, store_max_bytes=4096)


def test_an_evicted_turns_item_keys_go_with_it_unless_a_later_turn_brought_one(
    shared_redis: RedisServer,
) -> None:
    clock = Clock()
    kept = {"id": "in_k", "type": "message", "role": "user", "content": "kept"}

    async def body(a: RedisConversations, b: RedisConversations) -> None:
        clock.now += 1
        await answered(
            a, {"input": [kept, {"id": "in_1", "role": "user", "content": "1"}]}, "r1", "x"
        )
        clock.now += 1
        await answered(b, {"input": [kept]}, "r2", "y")  # in_k's key now names r2
        clock.now += 1
        await answered(a, {"input": "three"}, "r3", "z")  # past store_max_items: r1 goes
        assert await texts(b, {"input": [{"type": "item_reference", "id": "in_k"}]}) == ["kept"]

    prefix = run(shared_redis, 2, body, clock, store_max_items=2)

    async def check() -> None:
        redis = Redis.from_url(shared_redis.url)
        try:
            keys = sorted(k.decode() for k in await redis.keys(f"{prefix}resp:i:*"))
            assert keys == [f"{prefix}resp:i:{i}" for i in ("in_k", "msg_r2", "msg_r3")]
        finally:
            await redis.aclose()

    asyncio.run(check())


def test_redis_down_fails_open_with_what_this_host_filed(tmp_path: Any) -> None:
    from tests.fakes.redis_server import running_redis

    with running_redis(tmp_path / "redis") as server:

        async def body(a: RedisConversations, b: RedisConversations) -> None:
            await answered(a, {"input": "one"}, "resp_1", "first")
            server.stop()
            # a filed resp_1 itself: it still answers; b cannot know it, and says why.
            assert await texts(a, {"input": "two", "previous_response_id": "resp_1"}) == [
                "one", "first", "two",
            ]  # fmt: skip
            ref = {"input": [{"type": "item_reference", "id": "msg_resp_1"}]}
            assert await texts(a, ref) == ["first"]  # an item of a turn a filed: in its memory
            with pytest.raises(InvalidRequest, match="could not be read"):
                await texts(b, ref)
            with pytest.raises(InvalidRequest) as info:
                await texts(b, {"input": "two", "previous_response_id": "resp_1"})
            assert info.value.status == 400
            assert info.value.openai_code == "previous_response_not_found"
            assert "could not be read: Redis at redis://127.0.0.1:" in info.value.message
            assert b.health() is not None and b.health()["reachable"] is False  # type: ignore[index]
            await answered(b, {"input": "new"}, "resp_2", "kept here")  # answered, not refused
            assert b.health()["kept_in_memory_only"] == 1  # type: ignore[index]
            server.start()
            deadline = asyncio.get_running_loop().time() + 20
            while not b.up and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            assert b.up  # the probe noticed: Redis is asked again
            await answered(b, {"input": "three"}, "resp_3", "after")
            assert await stored(a, "resp_3")
            # What b answered while Redis was away was filed when it came back: a finds it.
            assert await stored(a, "resp_2") and "kept_in_memory_only" not in (b.health() or {})

        run(server, 2, body, state={"timeout_seconds": 1.0})


def test_redis_down_fails_closed_with_a_503(tmp_path: Any) -> None:
    from tests.fakes.redis_server import running_redis

    with running_redis(tmp_path / "redis") as server:

        async def body(a: RedisConversations) -> None:
            await answered(a, {"input": "one"}, "resp_1", "first")
            server.stop()
            with pytest.raises(StoreUnavailable) as info:
                await a.load({"input": "two", "previous_response_id": "resp_1"})
            assert info.value.status == 503 and 'fail = "closed"' in info.value.message
            # Known down: a request that would be stored is refused before it is forwarded ...
            with pytest.raises(StoreUnavailable):
                await a.load({"input": "new"})
            # ... one that stores nothing and refers to nothing is answered.
            assert await a.load({"input": "new", "store": False}) is None

        run(server, 1, body, state={"timeout_seconds": 1.0, "fail": "closed"})
