"""One client connection of the gateway's HTTP/1.1 server: heads parsed by httptools (llhttp, as
uvicorn uses), one handler task per request, answers in order, back-pressure both ways.

Bounds: a head must arrive within `head_timeout` of its first byte, a connection with no request
closes after `idle_timeout`, a body must arrive within `body_timeout` of its head and is never
held past `max_body` bytes; heads with a line over 8190 bytes or more than 128 headers are
refused. These deadlines are checked by the server's sweep (once a second, or sooner for short
limits), not by a timer per request. Protocol errors are answered in JSON in the dialect the
request line implies and close the connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, cast

import httptools
from multidict import CIMultiDict

from driftgate.proxy.errors import (
    GatewayError,
    HeadersTooLarge,
    InvalidRequest,
    RequestTimeout,
)
from driftgate.proxy.serve.protocol_errors import dialect_of_head, wire_error
from driftgate.proxy.serve.request import Request
from driftgate.proxy.serve.response import Response, StreamResponse

if TYPE_CHECKING:
    from driftgate.proxy.serve.server import HttpServer

log = logging.getLogger("driftgate.connections")
MAX_FIELD = 8190  # bytes in the request line or one header
MAX_HEADERS = 128
MAX_HEAD_BYTES = MAX_FIELD * 16  # a head (or what came in its packets) past this is refused
MAX_PIPELINED = 8  # requests read ahead of their answers before reading pauses
Reply = Response | StreamResponse
_NAMES: dict[bytes, str] = {}  # header names as sent -> decoded
_NAMES_KEPT = 4096  # distinct names remembered; past it a name is decoded each time
_NAME_KEPT_BYTES = 64  # a longer name is decoded each time (the memo stays small)
Handler = Callable[[Request], Awaitable[Reply]]


class _Refused(Exception):
    """A head the gateway will not take (raised inside a parser callback)."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


class ClientConnection(asyncio.Protocol):
    """A client's connection: parse, dispatch, answer in order, enforce the bounds."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.loop = server.loop
        self.max_body = server.max_body
        self.body_timeout = server.body_timeout
        self.transport: asyncio.Transport | None = None
        self.peer: str | None = None
        self.paused = False  # the client reads slower than we write
        self._drain: asyncio.Future[None] | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url: list[bytes] = []
        self._headers: list[tuple[str, str]] = []
        self._head_start = b""  # the bytes the head being read starts with: its dialect
        self._in_head = False
        self._head_bytes = 0  # bytes received while a head was unfinished
        self._upgraded = b""  # a head that asked to switch protocols, rebuilt without the ask
        self.head_since: float | None = None  # when the unfinished head's first bytes came
        self.idle_since: float | None = None  # when the connection last had nothing to do
        self._receiving: Request | None = None  # the request whose body is being read
        self._current: Request | None = None  # the request being answered
        self.task: asyncio.Task[None] | None = None  # the one answering the current request
        self._waiting: deque[Request] = deque()
        self._keep = True  # keep the connection open after the current answer
        self._reading_paused = False
        self._broken: GatewayError | None = None  # a protocol error after a request in progress
        self.closing = False  # the server is shutting down: close once idle
        self.answer_started = False  # bytes of the current request's answer have been written

    # asyncio's side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Count it in; the idle limit runs until its first byte."""
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else None
        self.idle_since = self.loop.time()
        self.server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        """Feed the parser; a malformed head is answered and the connection closed."""
        self.idle_since = None
        if self._broken is not None:
            return  # refused already: nothing more is read
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(HeadersTooLarge(
                    f"the request head is over {MAX_HEAD_BYTES} bytes, the most this gateway "
                    "accepts"
                ))  # fmt: skip
                return
        elif self._receiving is None and not self._head_start:
            self._head_start = data  # its request line: what dialect_of_head reads
        try:
            self._feed(data)
        except _Refused as refused:
            self._refuse(refused.error)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__ or exc.__cause__
            if isinstance(cause, _Refused):
                self._refuse(cause.error)
            else:
                log.error("a request handler callback failed: %r", cause)
                self._refuse(InvalidRequest("the request is not valid HTTP/1.1"))
        except httptools.HttpParserError as exc:
            self._refuse(parse_error(exc))
        else:
            if self._in_head and self.head_since is None:
                self.head_since = self.loop.time()

    def _feed(self, data: bytes) -> None:
        """Parse `data`. A head asking to switch protocols (`Upgrade: h2c`, as curl --http2
        sends) is read again without the ask: this server speaks HTTP/1.1 only, and what
        follows such a head is its body, not another protocol."""
        while True:
            try:
                self._parser.feed_data(data)
                return
            except httptools.HttpParserUpgrade as upgrade:
                head, self._upgraded = self._upgraded, b""
                if not head:
                    raise _Refused(
                        InvalidRequest(
                            "the request asks to switch protocols, which this gateway does not do"
                        )
                    ) from None
                self._parser = httptools.HttpRequestParser(self)
                data = head + data[int(upgrade.args[0]) :]

    def pause_writing(self) -> None:
        """The client is not reading: writers wait."""
        self.paused = True

    def resume_writing(self) -> None:
        """The client reads again."""
        self.paused = False
        waiter, self._drain = self._drain, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Count it out; a handler still running is cancelled (its upstream request too)."""
        self.transport = None
        self.server.connections.discard(self)
        self.server.book.closed()
        waiter, self._drain = self._drain, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("the client closed the connection"))
        for request in (self._receiving, self._current, *self._waiting):
            if request is not None:
                request.abort()
        self._waiting.clear()
        if self.task is not None and not self.task.done():
            self.task.cancel()

    # httptools' callbacks

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._url = []
        self._headers = []

    def on_url(self, url: bytes) -> None:
        self._url.append(url)
        if (len(self._url) > 1 and sum(map(len, self._url)) > MAX_FIELD) or len(url) > MAX_FIELD:
            raise _Refused(HeadersTooLarge(
                f"the request line is longer than {MAX_FIELD} bytes, the most this gateway accepts"
            ))  # fmt: skip

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) + len(value) > MAX_FIELD:
            raise _Refused(HeadersTooLarge(
                f"a request header is longer than {MAX_FIELD} bytes, the most this gateway accepts"
            ))  # fmt: skip
        if len(self._headers) >= MAX_HEADERS:
            raise _Refused(HeadersTooLarge(
                f"the request has more than {MAX_HEADERS} headers, the most this gateway accepts"
            ))  # fmt: skip
        # As aiohttp decodes them: the upstream client encodes them back to the same bytes. A
        # name is decoded once and remembered (clients send the same few names every request).
        text = _NAMES.get(name)
        if text is None:
            text = name.decode("utf-8", "surrogateescape")
            if len(_NAMES) < _NAMES_KEPT and len(name) <= _NAME_KEPT_BYTES:
                _NAMES[name] = text
        self._headers.append((text, value.decode("utf-8", "surrogateescape")))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self.head_since = None
        parser = self._parser
        headers = CIMultiDict(self._headers)
        version = parser.get_http_version()
        if version == "1.1" and "Host" not in headers:
            raise _Refused(InvalidRequest("the request has no Host header; HTTP/1.1 requires one"))
        target = self._url[0] if len(self._url) == 1 else b"".join(self._url)
        if parser.should_upgrade():
            method = parser.get_method()
            if method == b"CONNECT":
                raise _Refused(InvalidRequest(
                    "CONNECT is not supported: this gateway is not a forward proxy"
                ))  # fmt: skip
            self._upgraded = _without_upgrade(method, target, version, self._headers)
            return  # read again from the rebuilt head (see _feed)
        request = Request(
            self,
            parser.get_method().decode("ascii"),
            target,
            headers,
            version,
            parser.should_keep_alive(),
        )
        self._receiving = request
        if self._current is None:
            self._start(request)
        else:
            self._waiting.append(request)
            if len(self._waiting) >= MAX_PIPELINED and self.transport is not None:
                self.transport.pause_reading()
                self._reading_paused = True

    def on_body(self, body: bytes) -> None:
        request = self._receiving
        if request is not None:
            request.feed(body, self.max_body)

    def on_message_complete(self) -> None:
        request, self._receiving = self._receiving, None
        self._head_start = b""
        if request is not None:
            request.complete()

    # The handler's side

    def body_wanted(self, request: Request) -> None:
        """A handler waits for a body that has not all come: a client that asked to be told
        (Expect: 100-continue) is told to send it; reading resumes if it was paused."""
        expect = request.headers.get("Expect", "").lower() == "100-continue"
        if expect and request.version != "1.0" and self.transport:  # 1.0 has no 100 (RFC 9110)
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if self._reading_paused and self.transport is not None:
            self.transport.resume_reading()
            self._reading_paused = False

    def must_close(self, request: Request) -> bool:
        """Whether the connection closes after answering `request`."""
        return (
            not (self._keep and request.keep_alive)
            or self.closing
            or (self._broken is not None and not self._waiting)
            or not request.body_complete  # a body left unread would be taken for the next head
        )

    def write(self, data: bytes) -> None:
        """Send bytes now (ConnectionResetError when the client has gone)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        self.answer_started = True
        transport.write(data)

    def send(self, data: bytes, close: bool) -> None:
        """The last bytes of an answer; with `close` the connection ends after them."""
        self.write(data)
        if close:
            self._keep = False

    async def drain(self) -> None:
        """Wait until the client has read enough of what was written."""
        if not self.paused:
            return
        if self.transport is None:
            raise ConnectionResetError("the client closed the connection")
        if self._drain is None:
            self._drain = self.loop.create_future()
        await asyncio.shield(self._drain)

    def _start(self, request: Request) -> None:
        self._current = request
        self.answer_started = False
        self.task = self.loop.create_task(self._answer(request))

    async def _answer(self, request: Request) -> None:
        answer: Reply | None = None
        try:
            answer = await self.server.handler(request)
            if isinstance(answer, Response):
                answer.send(request)  # once: a handler that sent it already is not sent again
            elif not answer.ended:
                self._keep = False  # a stream left unfinished: only closing ends it for the client
        except (ConnectionError, asyncio.CancelledError):
            self._keep = False
        except Exception:
            log.exception("answering %s %s failed", request.method, request.path)
            self._keep = False
            if not self.answer_started and self.transport is not None:
                # Never a traceback or a silent close: a 500 in the dialect the path implies.
                line = f"{request.method} {request.path} ".encode("utf-8", "surrogateescape")
                error = GatewayError("the gateway hit an unexpected error; see its log")
                self.transport.write(wire_error(error, dialect_of_head(line)))
        finally:
            self._done(request, answer)

    def _done(self, request: Request, answer: Reply | None) -> None:
        self._current = None
        self.task = None
        transport = self.transport
        if transport is None:
            return
        if answer is None or answer.close or self.must_close(request):
            self._keep = False
        if not self._keep:
            if self._broken is not None and self._broken is not _TOLD:
                self._refuse(self._broken)
            transport.close()
            return
        if self._waiting:
            self._start(self._waiting.popleft())
            if self._reading_paused and len(self._waiting) < MAX_PIPELINED:
                transport.resume_reading()
                self._reading_paused = False
        elif not self._in_head:
            self.idle_since = self.loop.time()

    def _refuse(self, error: GatewayError) -> None:
        """A head that cannot be served: its error in JSON, then the connection closes."""
        transport = self.transport
        if transport is None:
            return
        if self._current is not None:  # answer what is in progress first, then this
            receiving, self._receiving = self._receiving, None
            if receiving is not None:  # the error is in this request's body: its handler says it
                receiving.fail(error)
                self._broken = _TOLD
            else:
                self._broken = error
            return
        if isinstance(error, RequestTimeout):
            self.server.book.head_timeouts += 1
            log.debug("closed a client connection: %s", error.message)
        else:
            self.server.book.protocol_errors += 1
            log.info("refused a malformed request from %s: %s", self.peer, error.message)
        transport.write(wire_error(error, dialect_of_head(self._head_start)))
        transport.close()
        self._keep = False

    # The server's sweep

    def sweep(self, now: float, head_timeout: float, idle_timeout: float) -> None:
        """Close the connection if its head is late or it has idled too long."""
        if self.transport is None:
            return
        if self._reading_paused:
            self.head_since = now if self.head_since is not None else None  # our pause, not theirs
        elif self.head_since is not None and now - self.head_since >= head_timeout:
            self.head_since = None
            self._refuse(RequestTimeout(
                f"the request head did not arrive within {head_timeout:g} s (gateway.head_timeout)"
            ))  # fmt: skip
        elif (
            self.idle_since is not None
            and self._current is None
            and now - self.idle_since >= idle_timeout
        ):
            self.transport.close()

    def close_if_idle(self) -> None:
        """The server is stopping: close now if nothing is in progress, else after the answer."""
        self.closing = True
        if self._current is None and self.transport is not None:
            self.transport.close()


_TOLD = GatewayError("told the handler")  # a body error its handler answers

_UPGRADE_HEADERS = frozenset({"upgrade", "http2-settings"})


def _without_upgrade(
    method: bytes, target: bytes, version: str, headers: list[tuple[str, str]]
) -> bytes:
    """The head again with Upgrade (and its Connection token) left out."""
    lines = [b"%s %s HTTP/%s" % (method, target, version.encode("ascii"))]
    for name, value in headers:
        lower = name.lower()
        if lower in _UPGRADE_HEADERS:
            continue
        if lower == "connection":
            tokens = [t for t in value.split(",") if t.strip().lower() not in _UPGRADE_HEADERS]
            if not tokens:
                continue
            value = ",".join(tokens)
        lines.append(f"{name}: {value}".encode("utf-8", "surrogateescape"))
    return b"\r\n".join(lines) + b"\r\n\r\n"


def parse_error(exc: httptools.HttpParserError) -> GatewayError:
    """A sentence for what was wrong with the request, never quoting it."""
    said = str(exc).lower()
    if isinstance(exc, httptools.HttpParserInvalidMethodError) or "method" in said:
        return InvalidRequest(
            "the request line is not valid HTTP (expected: METHOD /path HTTP/1.1)"
        )
    if isinstance(exc, httptools.HttpParserInvalidURLError):
        return InvalidRequest("the request target is not a valid URL path")
    if "content-length" in said or "transfer-encoding" in said or "chunk" in said:
        return InvalidRequest("the request's Content-Length or Transfer-Encoding is not valid")
    if "header" in said:
        return InvalidRequest("a request header is malformed")
    if "version" in said or "http" in said:
        return InvalidRequest(
            "the request line is not valid HTTP (expected: METHOD /path HTTP/1.1)"
        )
    return InvalidRequest("the request is not valid HTTP/1.1")
