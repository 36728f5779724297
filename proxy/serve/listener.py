"""The gateway's HTTP/1.1 server: the listening socket's protocol factory (a bounded connection,
or a refusal at the connection cap), the sweep that enforces head and idle deadlines, and the
open connections a shutdown closes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass

from driftgate.proxy.serve.connections import ConnectionBook, RefusedConnection
from driftgate.proxy.serve.protocol import ClientConnection, Reply
from driftgate.proxy.serve.request import Request
from driftgate.proxy.serve.router import App

SWEEP_EVERY = 1.0  # seconds between deadline checks (less when a deadline is shorter)


@dataclass(frozen=True, slots=True)
class Limits:
    """The client-side bounds ([gateway] head_timeout, body_timeout, idle_timeout, max_body_bytes)."""

    head_timeout: float
    body_timeout: float
    idle_timeout: float
    max_body: int


class HttpServer:
    """Accepts connections for `app` within `limits`, counted in `book`."""

    def __init__(self, app: App, book: ConnectionBook, limits: Limits) -> None:
        self.app = app
        self.book = book
        self.limits = limits
        self.loop = asyncio.get_running_loop()
        self.max_body = limits.max_body
        self.body_timeout = limits.body_timeout
        self.connections: set[ClientConnection] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def handler(self, request: Request) -> Awaitable[Reply]:
        """Dispatch a request to its route's handler (its coroutine, awaited by the connection:
        no coroutine of our own between them)."""
        return self.app.handler_for(request.method, request.path)(request)

    def factory(self) -> asyncio.BaseProtocol:
        """The listening socket's protocol for a new connection."""
        # Counted here, not in connection_made: one loop pass can accept many sockets before
        # any of them is made.
        if self.book.admit():
            if self._sweeper is None:
                self._sweeper = self.loop.create_task(self._sweep())
            return ClientConnection(self)
        return RefusedConnection(self.loop)

    async def _sweep(self) -> None:
        limits = self.limits
        every = min(SWEEP_EVERY, limits.head_timeout / 4, limits.idle_timeout / 4)
        while True:
            await asyncio.sleep(every)
            if not self.connections:  # nothing to sweep: the next connection starts it again
                self._sweeper = None
                return
            now = self.loop.time()
            for conn in list(self.connections):
                conn.sweep(now, limits.head_timeout, limits.idle_timeout)

    async def settle(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the answers still being written."""
        tasks = [conn.task for conn in self.connections if conn.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    def close_idle(self) -> None:
        """Stop: idle connections close now, busy ones after their answer."""
        for conn in list(self.connections):
            conn.close_if_idle()

    async def close(self) -> None:
        """Stop the sweep and close every connection left."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()
