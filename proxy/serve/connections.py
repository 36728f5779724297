"""Client connections counted against a cap: the book, the refusal past it, the open-files limit
the cap needs (the connection itself is proxy/serve/protocol.py)."""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import cast

from driftgate.proxy.errors import Overloaded
from driftgate.proxy.serve.protocol_errors import dialect_of_head, wire_error

log = logging.getLogger("driftgate.connections")
REFUSED_WAIT = 1.0  # seconds a refused connection has to send its request line (for its dialect)
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


class RefusedConnection(asyncio.Protocol):
    """A connection over the cap: a 503 in the dialect its request line implies, then closed."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Wait briefly for the request line, so the answer is in the client's dialect."""
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
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
