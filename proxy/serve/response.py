"""Answers written by the gateway's own HTTP/1.1 server: a whole `Response`, or a `StreamResponse`
sent chunk by chunk (chunked transfer encoding) with the client's back-pressure honoured."""

from __future__ import annotations

import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from driftgate.proxy.serve.request import Request

_STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n" for s in HTTPStatus}
_DATE: list[Any] = ["", -1]  # the Date header's value and its second, formatted once a second


def _date(now: int) -> str:
    """The Date header's value for second `now`, remembered for the rest of that second."""
    _DATE[0] = text = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now))
    _DATE[1] = now
    return text


def head_bytes(
    status: int, headers: dict[str, str], framing: str, close: bool, http10: bool = False
) -> bytes:
    """The status line and headers; `framing` is the Content-Length or Transfer-Encoding line."""
    lines = "".join([f"{k}: {v}\r\n" for k, v in headers.items()])
    closing = "Connection: close\r\n" if close else ""
    if http10 and not close:  # an HTTP/1.0 client keeps the connection only when told so
        closing = "Connection: keep-alive\r\n"
    start = _STATUS_LINES.get(status) or f"HTTP/1.1 {status} Unknown\r\n"
    now = int(time.time())
    date = _DATE[0] if now == _DATE[1] else _date(now)
    text = f"{start}{lines}{framing}Date: {date}\r\n{closing}\r\n"
    # A header name or value holding a line break would split the head: refuse to send it.
    if text.count("\n") != len(headers) + 3 + bool(framing) + bool(closing):
        raise ValueError("a response header holds a line break")
    return text.encode("utf-8", "surrogateescape")


class Response:
    """A whole answer: status, headers and body, sent in one write."""

    __slots__ = ("body", "close", "headers", "prepared", "status")

    def __init__(
        self,
        *,
        status: int = 200,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = dict(headers) if headers else {}
        if content_type is not None:
            self.headers["content-type"] = content_type
        self.close = False  # close the connection once it is sent
        self.prepared = False

    def force_close(self) -> None:
        """Close the connection after this answer."""
        self.close = True

    async def prepare(self, request: Request) -> None:
        """Send it now (ConnectionResetError when the client has gone)."""
        self.send(request)

    def send(self, request: Request) -> None:
        """Send it now, once, without a coroutine (ConnectionResetError when the client has
        gone): what `prepare` does, for callers that need not await."""
        if self.prepared:
            return
        conn = request.conn
        close = self.close or conn.must_close(request)
        head = head_bytes(
            self.status,
            self.headers,
            f"Content-Length: {len(self.body)}\r\n",
            close,
            request.version == "1.0",
        )
        self.prepared = True
        conn.send(head if request.method == "HEAD" else head + self.body, close)

    async def write_eof(self, data: bytes = b"") -> None:
        """Nothing left to send (`prepare` sent it all)."""


class StreamResponse:
    """A streamed answer: the head goes with the first bytes; each write is one chunk."""

    __slots__ = (
        "_conn",
        "_head",
        "_head_only",
        "_raw",
        "close",
        "ended",
        "headers",
        "prepared",
        "status",
    )

    def __init__(self, *, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.headers = dict(headers) if headers else {}
        self.close = False
        self.prepared = False
        self.ended = False
        self._conn: _Writable | None = None
        self._head = b""
        self._raw = False  # an HTTP/1.0 client: no chunked framing, the close ends the body
        self._head_only = False  # a HEAD request: the head, never a body

    def force_close(self) -> None:
        """Close the connection after this answer."""
        self.close = True

    async def prepare(self, request: Request) -> StreamResponse:
        """Fix the head; it is sent with the first chunk (or by `send_headers`)."""
        return self.prepare_now(request)

    def prepare_now(self, request: Request) -> StreamResponse:
        """`prepare` without a coroutine (it never waits)."""
        if not self.prepared:
            conn = request.conn
            self._raw = request.version == "1.0"
            self._head_only = request.method == "HEAD"
            if self._raw:
                self.close = True
            close = self.close or conn.must_close(request)
            self.close = close
            framing = "" if self._raw else "Transfer-Encoding: chunked\r\n"
            self._head = head_bytes(self.status, self.headers, framing, close)
            self._conn = conn
            self.prepared = True
            if self._head_only:  # the head is the whole answer
                head, self._head = self._head, b""
                self.ended = True
                conn.send(head, close)
        return self

    def send_headers(self) -> None:
        """Send the head now, before any body bytes."""
        if self._head:
            head, self._head = self._head, b""
            self._connection().write(head)

    async def write(self, data: bytes) -> None:
        """One chunk (ConnectionResetError when the client has gone); waits while the client
        reads slower than the gateway writes."""
        if self.put(data):
            await self._connection().drain()

    def put(self, data: bytes) -> bool:
        """`write` without the wait: True when the client reads slower than the gateway writes
        (then await `drain` before the next)."""
        if not data:
            return False
        if self._head_only:
            raise ConnectionResetError("a HEAD request: no body")  # stream handlers stop here
        conn = self._connection()
        framed = data if self._raw else b"%x\r\n%s\r\n" % (len(data), data)
        if self._head:
            framed = self._head + framed
            self._head = b""
        conn.write(framed)
        return conn.paused

    async def write_eof(self, data: bytes = b"") -> None:
        """The last bytes and the end of the body."""
        if self.end(data):
            await self._connection().drain()

    async def drain(self) -> None:
        """Wait until the client has read enough of what was written."""
        await self._connection().drain()

    def end(self, data: bytes = b"") -> bool:
        """`write_eof` without the wait: True when the client reads slower than the gateway
        writes (then await `drain`)."""
        if self.ended:
            return False
        conn = self._connection()
        if self._raw:
            tail = data
        elif data:
            tail = b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data)
        else:
            tail = b"0\r\n\r\n"
        if self._head:
            tail = self._head + tail
            self._head = b""
        self.ended = True
        conn.send(tail, self.close)
        return conn.paused

    def _connection(self) -> _Writable:
        conn = self._conn
        if conn is None:
            raise RuntimeError("StreamResponse written before prepare()")
        return conn


class _Writable(Protocol):
    """What a response needs of its connection (ClientConnection)."""

    paused: bool

    def write(self, data: bytes) -> None: ...
    def send(self, data: bytes, close: bool) -> None: ...
    async def drain(self) -> None: ...
