"""Client connections, bounded: a deadline for each request head, an idle limit, a cap on how many
are open, and protocol errors answered in JSON with one log line."""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from driftgate.proxy.errors import Overloaded, RequestTimeout
from driftgate.proxy.serve.protocol_errors import (
    dialect_of_head,
    json_error,
    protocol_error,
    wire_error,
)

log = logging.getLogger("driftgate.connections")
REFUSED_WAIT = 1.0  # seconds a refused connection has to send its request line (for its dialect)
# A head that ends within the first bytes of a read needs no timer (the usual case: one write).
HEAD_SCAN = 16384
FDS_PER_CONNECTION = 2  # the client's, and the upstream connection it may hold
FD_HEADROOM = 64  # listening socket, database, log files, templates


class ConnectionBook:
    """Open client connections counted against the cap; says once when full, once when not."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.open = 0
        self.refused = 0
        self.head_timeouts = 0
        self.protocol_errors = 0
        self._full_at: int | None = None  # `refused` when the cap was reached (None: not full)

    def admit(self) -> bool:
        """Count a new connection in, or refuse it (at the cap)."""
        if self.open < self.cap:
            self.open += 1
            return True
        if self._full_at is None:
            self._full_at = self.refused
            log.warning(
                "%d client connections open, the cap (gateway.max_connections): "
                "refusing new ones with 503 until some close",
                self.cap,
            )
        self.refused += 1
        return False

    def closed(self) -> None:
        """A counted connection ended; below the low-water mark the cap is reported lifted."""
        self.open -= 1
        if self._full_at is not None and self.open <= self.cap - max(1, self.cap // 10):
            log.warning(
                "client connections back under the cap (%d open); %d refused while full",
                self.open,
                self.refused - self._full_at,
            )
            self._full_at = None

    def snapshot(self) -> dict[str, int]:
        """The counters, for /health."""
        return {
            "open": self.open,
            "max": self.cap,
            "refused": self.refused,
            "head_timeouts": self.head_timeouts,
            "protocol_errors": self.protocol_errors,
        }


class ClientProtocol(web.RequestHandler):
    """aiohttp's request handler with a head deadline and protocol errors in JSON.

    After a response the idle limit is aiohttp's own keep-alive timer (it closes a connection
    still waiting for a complete head). Before the first byte it is this class's: aiohttp arms
    its timer at connect only in its newest releases. Then the head deadline, counted from a
    head's first bytes, cuts a slow head even when the idle limit is long.
    """

    __slots__ = (
        "_book",
        "_busy",
        "_head",
        "_head_timeout",
        "_head_timer",
        "_idle_timer",
        "_timer_loop",
    )

    def __init__(
        self,
        manager: web.Server,
        book: ConnectionBook,
        head_timeout: float,
        *,
        loop: asyncio.AbstractEventLoop,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self._book = book
        self._head_timeout = head_timeout
        self._timer_loop = loop
        self._idle_timer: asyncio.TimerHandle | None = None  # until the first byte
        self._head_timer: asyncio.TimerHandle | None = None
        self._head = b""  # the first bytes of the latest head: its request line tells the dialect
        self._busy = False  # a head is complete and its request not yet answered

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the idle limit: a connection that never sends a byte is closed after it."""
        super().connection_made(transport)
        self._idle_timer = self._timer_loop.call_later(self.keepalive_timeout, self._idle_expired)

    def _idle_expired(self) -> None:
        self._idle_timer = None
        if not self._head:
            self.force_close()

    def data_received(self, data: bytes) -> None:
        """Start a head's deadline on its first bytes, unless the head is complete in them."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if not self._busy and self._head_timer is None and data:
            self._head = data
            if data.find(b"\r\n\r\n", 0, HEAD_SCAN) >= 0:
                self._busy = True
            else:
                self._head_timer = self._timer_loop.call_later(
                    self._head_timeout, self._head_expired
                )
        super().data_received(data)

    def request_began(self) -> None:
        """The app started handling a request on this connection: its head is complete."""
        self._busy = True
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def request_ended(self) -> None:
        """The app is done with the request: the next bytes start a new head."""
        self._busy = False

    def _head_expired(self) -> None:
        self._head_timer = None
        transport = self.transport
        if self._busy or transport is None:
            return
        self._book.head_timeouts += 1
        log.debug("closed a client connection: no complete request head in %ss", self._head_timeout)
        err = RequestTimeout(
            f"the request head did not arrive within {self._head_timeout:g} s "
            "(gateway.head_timeout)"
        )
        transport.write(wire_error(err, dialect_of_head(self._head)))
        self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        """Count the connection out and drop its timers."""
        for timer in (self._idle_timer, self._head_timer):
            if timer is not None:
                timer.cancel()
        self._idle_timer = self._head_timer = None
        self._book.closed()
        super().connection_lost(exc)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A request aiohttp could not parse: JSON in the dialect its path implies, one log line."""
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        err = protocol_error(exc, self.max_field_size, self.max_headers)
        self._book.protocol_errors += 1
        log.info("refused a malformed request from %s: %s", request.remote, err.message)
        resp = web.Response(
            status=err.status,
            body=json_error(err, dialect_of_head(self._head)),
            content_type="application/json",
        )
        resp.force_close()
        return resp


class RefusedConnection(asyncio.Protocol):
    """A connection over the cap: a 503 in the dialect its request line implies, then closed."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Wait briefly for the request line, so the answer is in the client's dialect."""
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._timer = self._loop.call_later(REFUSED_WAIT, self._answer, b"")

    def data_received(self, data: bytes) -> None:
        """Answer on the first bytes."""
        self._answer(data)

    def _answer(self, head: bytes) -> None:
        transport, self._transport = self._transport, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if transport is None:
            return
        err = Overloaded(
            "the gateway has as many client connections open as it allows "
            "(gateway.max_connections); retry shortly"
        )
        transport.write(wire_error(err, dialect_of_head(head), retry_after=1))
        transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        """Nothing left to answer."""
        self._transport = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def client_protocols(
    server: web.Server, book: ConnectionBook, head_timeout: float, **handler_kwargs: Any
) -> Callable[[], asyncio.BaseProtocol]:
    """The listening socket's protocol factory: a bounded handler, or a refusal at the cap."""
    loop = asyncio.get_running_loop()

    def make() -> asyncio.BaseProtocol:
        # Counted here, not in connection_made: one loop pass can accept many sockets before
        # any of them is made.
        if book.admit():
            return ClientProtocol(server, book, head_timeout, loop=loop, **handler_kwargs)
        return RefusedConnection(loop)

    return make


def began(request: web.BaseRequest) -> None:
    """Tell the connection a request's handler started (its head deadline is met)."""
    proto = request.protocol
    if isinstance(proto, ClientProtocol):
        proto.request_began()


def ended(request: web.BaseRequest) -> None:
    """Tell the connection the handler is done."""
    proto = request.protocol
    if isinstance(proto, ClientProtocol):
        proto.request_ended()


def ensure_fd_limit(max_connections: int) -> str | None:
    """Raise the soft open-files limit to what the cap needs (up to the hard limit); else say so."""
    need = max_connections * FDS_PER_CONNECTION + FD_HEADROOM
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return None
    target = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft >= need:
        return None
    return (
        f"gateway.max_connections = {max_connections} needs about {need} open files, but the "
        f"limit is {soft}: lower max_connections or raise the limit (ulimit -n)"
    )
