"""The reservation script's lane to Redis: RESP read byte by byte, calls pipelined on one
connection against a real redis-server, and what a silent or vanished server does to calls out."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from driftgate.proxy.guard.redis_lane import ScriptLane, _Incomplete, pack, parse
from tests.fakes.redis_server import RedisServer


def _whole(data: bytes) -> Any:
    """Parse `data` fed one byte more at a time: incomplete until the last byte, then the reply."""
    for end in range(len(data)):
        with pytest.raises(_Incomplete):
            parse(data[:end], 0)
    reply, pos = parse(data, 0)
    assert pos == len(data)
    return reply


def test_replies_are_read_only_once_whole() -> None:
    assert _whole(b"*3\r\n$1\r\no\r\n$0\r\n\r\n$-1\r\n") == [b"o", b"", None]
    assert _whole(b"*2\r\n:-7\r\n*1\r\n+OK\r\n") == [-7, [b"OK"]]
    assert _whole(b"$12\r\nline\r\nbreaks\r\n") == b"line\r\nbreaks"
    assert isinstance(_whole(b"-NOSCRIPT No matching script.\r\n"), NoScriptError)
    error = _whole(b"-ERR wrong number of arguments\r\n")
    assert isinstance(error, ResponseError) and "wrong number" in str(error)


def test_a_reply_that_is_not_resp_is_refused() -> None:
    with pytest.raises(RedisConnectionError):
        parse(b"HTTP/1.1 400 Bad Request\r\n", 0)


def test_calls_out_together_are_answered_in_order(redis_server: RedisServer) -> None:
    async def main() -> list[Any]:
        lane = ScriptLane(redis_server.url.replace("/0", "/3"), 5.0)  # SELECT 3 on connect
        await lane.connect()
        got: list[Any] = []
        for i in range(50):
            lane.call(pack(["INCRBY", "n", i]), got.append)
        lane.call(pack(["NOSUCHCOMMAND"]), got.append)
        assert await lane.ask(pack(["GET", "n"])) == b"1225"
        lane.close()
        return got

    got = asyncio.run(main())
    assert got[:50] == [sum(range(i + 1)) for i in range(50)]
    assert isinstance(got[50], ResponseError)
    with socket.create_connection(("127.0.0.1", redis_server.port)) as sock:
        sock.sendall(pack(["SELECT", 3]) + pack(["GET", "n"]))
        assert sock.recv(64).endswith(b"$4\r\n1225\r\n")  # it was db 3


def test_a_silent_server_times_calls_out_and_the_next_connect_starts_afresh() -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers

    async def main() -> None:
        lane = ScriptLane(f"redis://127.0.0.1:{silent.getsockname()[1]}/0", 0.1)
        await lane.connect()
        got: list[Any] = []
        lane.call(pack(["PING"]), got.append)
        lane.call(pack(["PING"]), got.append)
        while len(got) < 2:
            await asyncio.sleep(0.01)
        assert all(isinstance(g, RedisTimeoutError) for g in got)
        assert not lane.ready  # a late reply would answer the wrong call: the connection is gone
        lane.close()

    try:
        asyncio.run(main())
    finally:
        silent.close()


def test_a_server_gone_fails_calls_out_and_connect_says_so(redis_server: RedisServer) -> None:
    async def main() -> None:
        lane = ScriptLane(redis_server.url, 5.0)
        await lane.connect()
        got: list[Any] = []
        lane.call(pack(["BLPOP", "never", 0]), got.append)  # waits until the server goes
        redis_server.stop()
        while not got:
            await asyncio.sleep(0.01)
        assert isinstance(got[0], RedisConnectionError)
        with pytest.raises(RedisConnectionError):
            await lane.connect()
        lane.close()

    asyncio.run(main())
