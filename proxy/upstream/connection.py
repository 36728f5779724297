"""One keep-alive HTTP/1.1 connection to an upstream, and the response read from it.

Parsing is httptools (llhttp, the parser uvicorn uses); everything else is a plain asyncio
Protocol: one future per response head, one per wait for body bytes, no per-request tasks.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from typing import Protocol, TypeVar

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from driftgate.proxy.upstream.errors import (
    UpstreamDisconnected,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamTruncated,
)

_T = TypeVar("_T")
MAX_HEADERS = 256
PAUSE_ABOVE = 1 << 21  # buffered body bytes at which reading pauses until the relay catches up


class UpstreamResponse:
    """Status, headers, and a body read as it arrives (`readany`) or whole (`read`)."""

    __slots__ = (
        "_chunks",
        "_conn",
        "_decoder",
        "_deflate_head",
        "_done",
        "_error",
        "_greedy",
        "_paused",
        "_size",
        "_waiter",
        "close_delimited",
        "headers",
        "status",
    )  # fmt: skip

    def __init__(
        self, conn: Connection, status: int, headers: CIMultiDictProxy[str], close_delimited: bool
    ) -> None:
        self.status = status
        self.headers = headers
        self.close_delimited = close_delimited  # no length, not chunked: the body ends at EOF
        self._conn = conn
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._done = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._greedy = False  # read() wants everything: never pause
        self._deflate_head: bytes | None = None  # deflate: first bytes, until zlib or raw is known
        self._decoder: zlib._Decompress | None = None
        encoding = headers.get("Content-Encoding")
        if encoding is not None and encoding.lower() not in ("identity", ""):
            if encoding.lower() not in ("gzip", "x-gzip", "deflate"):
                raise UpstreamProtocolError(f"unsupported Content-Encoding {encoding!r}")
            self._decoder = zlib.decompressobj(47)  # gzip or zlib, detected from the header bytes
            if encoding.lower() == "deflate":
                self._deflate_head = b""  # some servers send raw deflate, without zlib's header

    @property
    def content_type(self) -> str:
        """The media type, lower-cased, without parameters; "" when absent."""
        value = self.headers.get("Content-Type")
        return value.partition(";")[0].strip().lower() if value else ""

    @property
    def complete(self) -> bool:
        """The whole body has arrived (not necessarily been read)."""
        return self._done

    def at_eof(self) -> bool:
        """The body is complete and all of it was read."""
        return self._done and not self._chunks

    async def readany(self) -> bytes:
        """The body bytes available now (waiting for some if none are); b"" at the end."""
        if not self._chunks:
            if self._error is not None:
                raise self._error
            if self._done:
                return b""
            await self._wait()
            if not self._chunks:
                if self._error is not None:
                    raise self._error
                return b""
        return self._take_all()

    async def read(self) -> bytes:
        """The rest of the body."""
        self._greedy = True
        self._resume()
        while not self._done:
            if self._error is not None:
                raise self._error
            await self._wait()
        if self._error is not None:
            raise self._error
        return self._take_all()

    def _take_all(self) -> bytes:
        chunks = self._chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._size = 0
        self._resume()
        return data

    def _resume(self) -> None:
        if self._paused:
            self._paused = False
            self._conn.resume_reading()

    def release(self) -> None:
        """Give the connection back for reuse when the answer is complete, else close it."""
        if self._conn.current is self:  # once only: the connection may serve another by now
            self._conn.release(self._done and self._error is None)

    def close(self) -> None:
        """Drop the connection now: the upstream sees the request abandoned."""
        if self._conn.current is self:
            self._conn.close()

    async def _wait(self) -> None:
        waiter = self._waiter = self._conn.loop.create_future()
        try:
            await self._conn.bounded(waiter)
        finally:
            self._waiter = None

    def _wake(self, exc: BaseException | None = None) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)

    # Called by the connection.
    def feed(self, data: bytes) -> None:
        if self._decoder is not None:
            try:
                data = self._decode(data)
            except zlib.error as exc:
                self.fail(UpstreamProtocolError(f"undecodable compressed body: {exc}"))
                self._conn.close()
                return
        if data:
            self._chunks.append(data)
            self._size += len(data)
            if self._size > PAUSE_ABOVE and not self._paused and not self._greedy:
                self._paused = True
                self._conn.pause_reading()
            self._wake()

    def _decode(self, data: bytes) -> bytes:
        assert self._decoder is not None
        if self._deflate_head is not None:
            data = self._deflate_head + data
            if len(data) < 2:
                self._deflate_head = data  # a zlib header is two bytes: wait for the second
                return b""
            self._deflate_head = None
            if (data[0] & 0x0F) != 8 or (data[0] << 8 | data[1]) % 31:
                self._decoder = zlib.decompressobj(-15)  # raw deflate, as aiohttp also accepted
        return self._decoder.decompress(data)

    def finish(self) -> None:
        if self._decoder is not None:
            tail = self._decoder.flush()
            if tail:
                self._chunks.append(tail)
        self._done = True
        self._wake()

    def fail(self, exc: BaseException) -> None:
        if self._done or self._error is not None:
            return
        self._error = exc
        self._wake(exc)


class Connection(asyncio.Protocol):
    """An HTTP/1.1 client connection: one request at a time, responses parsed by httptools."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, pool: Pool, key: tuple[str, str, int]
    ) -> None:
        self.loop = loop
        self.key = key
        self.idle_since = 0.0
        self.closed = False
        self._pool = pool
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._head: asyncio.Future[UpstreamResponse] | None = None
        self._response: UpstreamResponse | None = None
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._keep_alive = False
        self._read: float | None = None
        self._total: asyncio.TimerHandle | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._head is None:
            self.close()  # bytes nobody asked for (an idle 408, say): never reuse this connection
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(f"malformed HTTP response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._stop_total()
        resp = self._response
        if resp is not None and resp.close_delimited and exc is None and not resp.complete:
            resp.finish()  # a body without length or chunking ends where the connection does
        elif resp is not None:
            self._fail(UpstreamTruncated("the upstream closed the connection mid-body"))
        else:
            self._fail(UpstreamDisconnected("the upstream closed the connection without answering"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        resp = self._response
        if resp is not None and resp.complete:
            raise UpstreamProtocolError("bytes after the complete response")  # then closed

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw_headers.append((name, value))
        if len(self._raw_headers) > MAX_HEADERS:
            raise UpstreamProtocolError(f"more than {MAX_HEADERS} response headers")

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        raw, self._raw_headers = self._raw_headers, []
        if status < 200:
            return  # an interim answer (100 Continue, 103 Early Hints): the real one follows
        headers = CIMultiDict(
            [(n.decode("latin-1"), v.decode("latin-1").strip(" \t")) for n, v in raw]
        )
        delimited = (
            "Content-Length" not in headers
            and "chunked" not in headers.get("Transfer-Encoding", "").lower()
            and status not in (204, 304)
        )
        try:
            resp = UpstreamResponse(self, status, CIMultiDictProxy(headers), delimited)
        except UpstreamError as exc:
            self._fail(exc)
            self.close()
            return
        self._response = resp
        head = self._head
        if head is not None and not head.done():
            head.set_result(resp)

    def on_body(self, body: bytes) -> None:
        if self._response is not None:
            self._response.feed(body)

    def on_message_complete(self) -> None:
        resp = self._response
        if resp is None:
            return  # the end of an interim answer
        self._keep_alive = self._parser.should_keep_alive()
        self._stop_total()
        resp.finish()

    # used by the client and the response
    @property
    def current(self) -> UpstreamResponse | None:
        """The response being read on this connection (None when idle)."""
        return self._response

    def send(
        self, data: bytes, read: float | None, deadline: float | None
    ) -> asyncio.Future[UpstreamResponse]:
        """Write one request; the future resolves with the response head.

        `read` bounds each wait for bytes; `deadline` (loop time) ends the whole exchange.
        """
        assert self._transport is not None
        self._response = None
        self._raw_headers = []
        self._keep_alive = False
        self._read = read
        head = self._head = self.loop.create_future()
        if deadline is not None:
            self._total = self.loop.call_at(deadline, self._expire, "total")
        self._transport.write(data)
        return head

    async def bounded(self, fut: asyncio.Future[_T]) -> _T:
        """Await `fut` under the read bound; on cancellation the connection is dropped."""
        timer = (
            self.loop.call_later(self._read, self._expire, "read")
            if self._read is not None
            else None
        )
        try:
            return await fut
        except asyncio.CancelledError:
            self.close()
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def pause_reading(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.resume_reading()

    def release(self, complete: bool) -> None:
        """Back to the pool after a complete keep-alive exchange; otherwise closed."""
        self._stop_total()
        if complete and self._keep_alive and not self.closed and self._transport is not None:
            self._response = None
            self._head = None
            self._pool.put(self)
        else:
            self.close()

    def close(self) -> None:
        """Drop the connection (pending waits fail with UpstreamDisconnected)."""
        self._stop_total()
        if self._transport is not None and not self.closed:
            self.closed = True
            self._transport.abort()
        self._fail(UpstreamDisconnected("the connection was closed"))

    def is_usable(self) -> bool:
        """Open, idle and not half-closed by the upstream."""
        transport = self._transport
        return not self.closed and transport is not None and not transport.is_closing()

    def _expire(self, which: str) -> None:
        self._fail(UpstreamTimeout(f"the upstream did not answer within the {which} time bound"))
        self.close()

    def _stop_total(self) -> None:
        if self._total is not None:
            self._total.cancel()
            self._total = None

    def _fail(self, exc: UpstreamError) -> None:
        head = self._head
        if head is not None and not head.done():
            head.set_exception(exc)
            head.exception()  # retrieved: a head nobody awaits any more must not warn
        if self._response is not None:
            self._response.fail(exc)


class Pool(Protocol):
    """Where released connections wait (the client)."""

    def put(self, conn: Connection) -> None:
        """Keep `conn` for the next request to its host (or close it)."""
