"""One keep-alive HTTP/1.1 connection to an upstream, and the response read from it.

Parsing is httptools (llhttp, the parser uvicorn uses); everything else is a plain asyncio
Protocol: one future per response head, one per wait for body bytes, no per-request tasks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol, TypeVar

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from driftgate.proxy.upstream.decoding import decoder_for, too_large
from driftgate.proxy.upstream.errors import (
    UpstreamDisconnected,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamTruncated,
)

_T = TypeVar("_T")
MAX_HEADERS = 256
# Loops fire a timer up to a clock tick before its time (uvloop counts milliseconds): a deadline
# that close is due, as it was when each bound had a timer of its own.
_TIMER_SLACK = 0.001
PAUSE_ABOVE = 1 << 21  # buffered body bytes at which reading pauses until the relay catches up


_NAMES: dict[bytes, str] = {}  # response header names as sent -> decoded
_NAMES_KEPT = 4096  # distinct names remembered; past it a name is decoded each time


def _name(raw: bytes) -> str:
    """A response header name decoded, remembered (an upstream sends the same names each time)."""
    name = raw.decode("latin-1")
    if len(_NAMES) < _NAMES_KEPT and len(raw) <= 64:  # a longer name is decoded each time
        _NAMES[raw] = name
    return name


class UpstreamResponse:
    """Status, headers, and a body read as it arrives (`readany`) or whole (`read`)."""

    __slots__ = (
        "_chunks",
        "_conn",
        "_decoder",
        "_done",
        "_error",
        "_greedy",
        "_max",
        "_paused",
        "_raw_done",
        "_received",
        "_size",
        "_waiter",
        "close_delimited",
        "headers",
        "peak_buffered",
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
        self._size = 0  # body bytes buffered for the reader (decoded)
        self.peak_buffered = 0  # the most ever buffered at once (flat memory, checked by tests)
        self._received = 0  # identity body bytes so far, against max_response_bytes
        self._raw_done = False  # the parser saw the message end
        self._done = False  # ... and the decoder, if any, has produced everything
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._greedy = False  # read() wants everything: never pause
        self._max = conn.max_bytes
        encoding = headers.get("Content-Encoding")
        self._decoder = None if encoding is None else decoder_for(encoding, self._max)

    @property
    def content_type(self) -> str:
        """The media type, lower-cased, without parameters; "" when absent."""
        value = self.headers.get("Content-Type")
        return value.partition(";")[0].strip().lower() if value else ""

    @property
    def complete(self) -> bool:
        """The whole body has arrived and is decoded (not necessarily read)."""
        return self._done

    @property
    def received_all(self) -> bool:
        """The message end arrived (decoding may still be under way)."""
        return self._raw_done

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
            waiter = self._waiter = self._conn.loop.create_future()
            try:
                await self._conn.bounded(waiter)
            finally:
                self._waiter = None
            if not self._chunks:
                if self._error is not None:
                    raise self._error
                return b""
        return self._take_all()

    async def read(self) -> bytes:
        """The rest of the body."""
        self._greedy = True
        if self._decoder is not None:
            self._pump()
        self._resume()
        while not self._done:
            if self._error is not None:
                raise self._error
            await self._wait()
        if self._error is not None:
            raise self._error
        return self._take_all()

    def read_now(self) -> bytes | None:
        """The rest of the body when it has all arrived and is decoded (as `read` gives it, with
        no coroutine: a small answer comes with its head), else None."""
        if not self._done or self._error is not None:
            return None
        return self._take_all()

    def _take_all(self) -> bytes:
        chunks = self._chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._size = 0
        if self._decoder is not None:
            self._pump()  # the reader made room: decode the next pieces
        self._resume()
        return data

    def _resume(self) -> None:
        if self._paused and not (self._decoder is not None and self._decoder.pending):
            self._paused = False
            self._conn.resume_reading()

    def _pause(self) -> None:
        if not self._paused:
            self._paused = True
            self._conn.pause_reading()

    def release(self) -> None:
        """Give the connection back for reuse when the answer is complete, else close it."""
        if self._conn._response is self:  # once only: the connection may serve another by now
            self._conn.release(self._done and self._error is None)

    def close(self) -> None:
        """Drop the connection now: the upstream sees the request abandoned."""
        if self._conn._response is self:
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

    def _append(self, data: bytes) -> None:
        self._chunks.append(data)
        size = self._size = self._size + len(data)
        if size > self.peak_buffered:
            self.peak_buffered = size

    def _abort(self, exc: UpstreamError) -> None:
        """A failure of the body itself (too large, undecodable): the connection goes too."""
        self._error = exc
        self._wake(exc)
        self._conn.close()

    def _pump(self) -> None:
        """Decode waiting input while the reader has room (all of it for read())."""
        decoder = self._decoder
        assert decoder is not None
        try:
            while decoder.pending and (self._greedy or self._size <= PAUSE_ABOVE):
                out = decoder.pull()
                if out:
                    self._append(out)
            if decoder.pending:
                self._pause()  # compressed input waits; so does the socket
            elif self._raw_done and not self._done:
                tail = decoder.end()
                if tail:
                    self._append(tail)
                self._done = True
        except UpstreamError as exc:
            self._abort(exc)
            return
        if self._chunks or self._done:
            self._wake()

    # Called by the connection.
    def feed_parts(self, parts: list[bytes]) -> None:
        """The body pieces one read of the socket held (a chunked stream: one per chunk), taken
        together: the checks and the reader's wake-up once per read, not once per chunk."""
        if self._error is not None:
            return
        if self._decoder is not None:
            for part in parts:  # one by one: what decodes before a corrupt piece still goes out
                self._decoder.push(part)
                self._pump()
                if self._error is not None:
                    return
            return
        n = len(parts[0]) if len(parts) == 1 else sum(map(len, parts))
        received = self._received = self._received + n
        if received > self._max:
            room = self._max - (received - n)
            for part in parts:  # the pieces within the bound still go out, then the error
                if len(part) > room:
                    break
                self._append(part)
                room -= len(part)
            self._abort(too_large(self._max))
            return
        self._chunks.extend(parts)
        size = self._size = self._size + n
        if size > self.peak_buffered:
            self.peak_buffered = size
        if size > PAUSE_ABOVE and not self._greedy:
            self._pause()
        self._wake()

    def finish(self) -> None:
        self._raw_done = True
        if self._decoder is not None:
            self._pump()
        else:
            self._done = True
            self._wake()

    def fail(self, exc: BaseException) -> None:
        if self._raw_done or self._error is not None:
            return  # all bytes are in: a later close or timeout changes nothing
        self._error = exc
        self._wake(exc)


class Connection(asyncio.Protocol):
    """An HTTP/1.1 client connection: one request at a time, responses parsed by httptools."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pool: Pool,
        key: tuple[str, str, int],
        max_bytes: int,
    ) -> None:
        self.loop = loop
        self.key = key
        self.max_bytes = max_bytes  # the backend's max_response_bytes
        self.counted = False  # holds a slot under max_connections_per_host
        self.idle_since = 0.0
        self.closed = False
        self._pool = pool
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._head: asyncio.Future[UpstreamResponse] | None = None
        self._response: UpstreamResponse | None = None
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._parts: list[bytes] = []  # body pieces parsed from the read under way
        self._keep_alive = False
        self._read: float | None = None
        # The bounds as deadlines (loop time), checked by one timer per connection that is
        # moved only when a deadline comes sooner than it fires: a request on a kept connection
        # sets a float instead of starting and cancelling a timer (the total bound is minutes
        # long, so a timer set for an earlier request is still pending and is re-armed for the
        # later deadline when it fires).
        self._total_at: float | None = None  # the whole exchange ends by then
        self._read_at: float | None = None  # the wait for bytes under way ends by then
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._head is None:
            self.close()  # bytes nobody asked for (an idle 408, say): never reuse this connection
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._parts = []
            self.close()  # a 101 or an Upgrade: already failed in on_headers_complete
            return
        except httptools.HttpParserError as exc:
            parts, self._parts = self._parts, []
            if parts and self._response is not None:  # what came before the fault goes out
                self._response.feed_parts(parts)
            self._fail(UpstreamProtocolError(f"malformed HTTP response: {exc}"))
            self.close()
            return
        parts = self._parts
        if parts:  # the body pieces of this read, handed over at once
            self._parts = []
            resp = self._response
            if resp is not None:
                resp.feed_parts(parts)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._stop_timer()
        self._pool.lost(self)
        resp = self._response
        if resp is not None and resp.close_delimited and exc is None and not resp.received_all:
            resp.finish()  # a body without length or chunking ends where the connection does
        elif resp is not None:
            self._fail(UpstreamTruncated("the upstream closed the connection mid-body"))
        else:
            self._fail(UpstreamDisconnected("the upstream closed the connection without answering"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        resp = self._response
        if resp is not None and resp._raw_done:  # (received_all, without a property call)
            raise UpstreamProtocolError("bytes after the complete response")  # then closed

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw_headers.append((name, value))
        if len(self._raw_headers) > MAX_HEADERS:
            raise UpstreamProtocolError(f"more than {MAX_HEADERS} response headers")

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        raw, self._raw_headers = self._raw_headers, []
        if status == 101:  # the gateway never asks to switch protocols: nothing to relay
            self._fail(UpstreamProtocolError("the upstream switched protocols (101) unasked"))
            self.close()
            return
        if status < 200:
            return  # an interim answer (100 Continue, 103 Early Hints): the real one follows
        names = _NAMES
        headers = CIMultiDict(
            # As the gateway's server decodes request headers (and aiohttp did): a client gets
            # the upstream's bytes back when the value is encoded again.
            [
                (names.get(n) or _name(n), v.decode("utf-8", "surrogateescape").strip(" \t"))
                for n, v in raw
            ]
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
        # Once per chunk of a chunked body: kept to an append (data_received hands them over).
        self._parts.append(body)

    def on_message_complete(self) -> None:
        resp = self._response
        if resp is None:
            return  # the end of an interim answer
        parts = self._parts
        if parts:  # the body's last pieces go in before its end
            self._parts = []
            resp.feed_parts(parts)
        self._keep_alive = self._parser.should_keep_alive()
        self._total_at = None  # the exchange is over: a pending timer finds nothing due
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
        self._parts = []
        self._keep_alive = False
        self._read = read
        head = self._head = self.loop.create_future()
        self._total_at = deadline
        if deadline is not None:
            self._arm(deadline)
        self._transport.write(data)
        return head

    async def bounded(self, fut: asyncio.Future[_T]) -> _T:
        """Await `fut` under the read bound; on cancellation the connection is dropped."""
        read = self._read
        if read is not None:
            when = self._read_at = self.loop.time() + read
            self._arm(when)
        try:
            return await fut
        except asyncio.CancelledError:
            self.close()
            raise
        finally:
            self._read_at = None

    def pause_reading(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.resume_reading()

    def release(self, complete: bool) -> None:
        """Back to the pool after a complete keep-alive exchange; otherwise closed."""
        self._total_at = None
        transport = self._transport
        if (
            complete
            and self._keep_alive
            and not self.closed
            and transport is not None
            and not transport.get_write_buffer_size()  # the answer came before our body went
        ):
            self._response = None
            self._head = None
            self._pool.put(self)
        else:
            self.close()

    def close(self) -> None:
        """Drop the connection (pending waits fail with UpstreamDisconnected)."""
        self._stop_timer()
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

    def _stop_timer(self) -> None:
        self._total_at = None
        self._read_at = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, when: float) -> None:
        """Have the timer fire by `when` (a timer due sooner is kept: it re-arms when it fires)."""
        timer = self._timer
        if timer is None or when < self._timer_at:
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(when, self._on_timer)
            self._timer_at = when

    def _on_timer(self) -> None:
        """A deadline may be due: expire the exchange, or wait on for the next deadline."""
        self._timer = None
        total, read = self._total_at, self._read_at
        if total is None and read is None:
            return  # nothing under way (the exchange ended, or the connection is idle)
        now = self.loop.time() + _TIMER_SLACK
        if total is not None and now >= total:
            self._expire("total")
        elif read is not None and now >= read:
            self._expire("read")
        else:
            self._arm(min(t for t in (total, read) if t is not None))

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

    def lost(self, conn: Connection) -> None:
        """`conn` has ended (its slot under a per-host limit is free)."""
