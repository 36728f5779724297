"""The reservation script's own connection to Redis: calls written back to back, answers read in
order, each resolved from `data_received`.

A reservation is the one Redis round trip on the request path. Through redis-py's client each
call takes a pooled connection, runs its retry and metrics hooks and parses on a task; here a
call is one write of prebuilt EVALSHA bytes and its answer resolves the callers' future as it
arrives, with no task in between, and several calls may be out at once on one connection
(Redis answers them in order). Everything else the guard asks (loading scripts, probes,
snapshots, settlements sent alone) stays on redis-py. `redis://` and `unix://` URLs only: with
`rediss://` the store keeps using redis-py for reservations too.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from redis.asyncio.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("driftgate.guard")
Arg = bytes | str | int


def supported(url: str) -> bool:
    """Whether the lane can reach this Redis (plain TCP or a Unix socket; TLS is redis-py's)."""
    return url.startswith(("redis://", "unix://"))


def bulks(args: list[Arg]) -> bytes:
    """`args` as RESP bulk strings (a command's arguments, without the array's header)."""
    out = []
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def command(head: bytes, head_count: int, args: list[Arg]) -> bytes:
    """One command in RESP: `head` (`head_count` arguments already encoded) then `args`."""
    return b"*%d\r\n%s%s" % (head_count + len(args), head, bulks(args))


def pack(args: list[Arg]) -> bytes:
    """One command in RESP: an array of bulk strings."""
    return command(b"", 0, args)


OnReply = Callable[[Any], None]  # a reply, an error reply (ResponseError), or the failure


def _tell(on_reply: OnReply, reply: Any) -> None:
    try:
        on_reply(reply)
    except Exception:  # a caller's bug must not leave the other calls unanswered
        log.exception("Redis lane: a reply's handler failed")


async def _asked(conn: _Connection, packed: bytes) -> Any:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def settle(reply: Any) -> None:
        if future.done():
            return
        if isinstance(reply, (RedisConnectionError, RedisTimeoutError)):
            future.set_exception(reply)
        else:
            future.set_result(reply)

    conn.call(packed, settle)
    return await future


class _Incomplete(Exception):
    """The buffer ends inside a reply."""


def parse(buf: bytes | bytearray, pos: int) -> tuple[Any, int]:
    """One RESP2 reply from `buf` at `pos`, and where the next begins (_Incomplete: wait)."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind, line, pos = buf[pos], bytes(buf[pos + 1 : end]), end + 2
    if kind == 0x24:  # $ bulk string
        n = int(line)
        if n < 0:
            return None, pos
        if len(buf) < pos + n + 2:
            raise _Incomplete
        return bytes(buf[pos : pos + n]), pos + n + 2
    if kind == 0x2A:  # * array
        n = int(line)
        if n < 0:
            return None, pos
        items = []
        for _ in range(n):
            item, pos = parse(buf, pos)
            items.append(item)
        return items, pos
    if kind == 0x3A:  # : integer
        return int(line), pos
    if kind == 0x2B:  # + simple string
        return line, pos
    if kind == 0x2D:  # - error
        text = line.decode(errors="replace")
        if text.startswith("NOSCRIPT"):
            return NoScriptError(text), pos
        return ResponseError(text), pos
    raise RedisConnectionError(f"Redis sent something that is not RESP ({kind!r})")


class _Connection(asyncio.Protocol):
    """One TCP (or Unix socket) connection: replies matched to calls in the order they were sent."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._waiting: deque[tuple[OnReply, asyncio.TimerHandle]] = deque()

    def call(self, packed: bytes, on_reply: OnReply) -> None:
        loop = asyncio.get_running_loop()
        if self.transport is None or self.transport.is_closing():
            _tell(on_reply, RedisConnectionError("Connection to Redis lost"))
            return
        timer = loop.call_later(self.timeout, self._timed_out)
        self._waiting.append((on_reply, timer))
        self.transport.write(packed)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos, waiting = 0, self._waiting
        try:
            while waiting:
                reply, next_pos = parse(buf, pos)
                pos = next_pos
                on_reply, timer = waiting.popleft()
                timer.cancel()
                _tell(on_reply, reply)
        except _Incomplete:
            pass
        except (RedisConnectionError, ValueError) as exc:
            self.fail(RedisConnectionError(f"unreadable reply from Redis: {exc}"))
            return
        del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError(f"Connection to Redis lost: {exc or 'closed by server'}"))

    def _timed_out(self) -> None:
        # A reply late past the timeout would answer the wrong call: this connection is done.
        self.fail(RedisTimeoutError("Timeout reading from Redis"))

    def fail(self, exc: Exception) -> None:
        """Every call out fails with `exc`; the connection closes."""
        waiting, self._waiting = self._waiting, deque()
        for on_reply, timer in waiting:
            timer.cancel()
            _tell(on_reply, exc)
        transport, self.transport = self.transport, None
        if transport is not None:
            transport.close()


class ScriptLane:
    """A connection for EVALSHA calls, opened again when lost; `call` returns the reply's future."""

    def __init__(self, url: str, timeout: float) -> None:
        self._where = parse_url(url)
        self._timeout = timeout
        self._conn: _Connection | None = None
        self._connecting: asyncio.Future[None] | None = None

    @property
    def ready(self) -> bool:
        """Connected: a call can be written now."""
        conn = self._conn
        return conn is not None and conn.transport is not None

    def call(self, packed: bytes, on_reply: OnReply) -> None:
        """Write one packed command; `on_reply` gets the reply (an error reply, or the failure,
        as an exception instance) from the loop's reading of the socket, with no task between."""
        assert self._conn is not None
        self._conn.call(packed, on_reply)

    async def ask(self, packed: bytes) -> Any:
        """`call`, awaited (the failure raised; an error reply returned as a value)."""
        await self.connect()
        assert self._conn is not None
        return await _asked(self._conn, packed)

    async def connect(self) -> None:
        """Open the connection (AUTH and SELECT as the URL says); one attempt at a time."""
        if self.ready:
            return
        if self._connecting is not None:
            return await asyncio.shield(self._connecting)
        loop = asyncio.get_running_loop()
        self._connecting = connecting = loop.create_future()
        try:
            self._conn = await self._open(loop)
        except BaseException as exc:
            connecting.set_exception(exc)
            connecting.exception()  # marked retrieved: whoever waited on it got it
            raise
        else:
            connecting.set_result(None)
        finally:
            self._connecting = None

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        w = self._where
        conn = _Connection(self._timeout)
        try:
            if "path" in w:
                opening = loop.create_unix_connection(lambda: conn, str(w["path"]))
            else:
                host, port = str(w.get("host", "localhost")), int(w.get("port", 6379))
                opening = loop.create_connection(lambda: conn, host, port)
            await asyncio.wait_for(opening, self._timeout)
        except TimeoutError:
            raise RedisTimeoutError("Timeout connecting to Redis") from None
        except OSError as exc:
            raise RedisConnectionError(f"Error connecting to Redis: {exc}") from None
        hello: list[bytes] = []
        if w.get("password"):
            user = [w["username"]] if w.get("username") else []
            hello.append(pack(["AUTH", *user, w["password"]]))
        if w.get("db"):
            hello.append(pack(["SELECT", int(w["db"])]))
        for packed in hello:
            got = await _asked(conn, packed)
            if isinstance(got, Exception):
                conn.fail(RedisConnectionError(f"Redis refused the connection: {got}"))
                raise RedisConnectionError(f"Redis refused the connection: {got}")
        return conn

    def close(self) -> None:
        """Drop the connection (calls out fail); `connect` opens a new one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.fail(RedisConnectionError("closed"))
