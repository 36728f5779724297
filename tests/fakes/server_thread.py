"""Run an aiohttp application in a background thread on 127.0.0.1, port 0 (a free port)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar

from aiohttp import web

T = TypeVar("T")


class ServerThread:
    """A real HTTP server on loopback, owned by a test fixture: `start()`, `.url`, `stop()`."""

    def __init__(
        self, app: web.Application, host: str = "127.0.0.1", shutdown_timeout: float = 0.5
    ):
        self.app = app
        self.host = host
        self.port = 0
        self._shutdown_timeout = shutdown_timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fake-server", daemon=True
        )
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>` once started."""
        return f"http://{self.host}:{self.port}"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The server's event loop (for `call_soon_threadsafe`)."""
        return self._loop

    def run(self, coro_fn: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
        """Run a coroutine on the server loop and wait for its result."""

        async def wrapper() -> T:
            return await coro_fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout)

    def start(self) -> ServerThread:
        """Bind a free port and serve until `stop()`."""
        self._thread.start()

        async def boot() -> int:
            runner = web.AppRunner(
                self.app,
                shutdown_timeout=self._shutdown_timeout,
                access_log=None,
                handle_signals=False,
            )
            await runner.setup()
            site = web.TCPSite(runner, self.host, 0)
            await site.start()
            self._runner = runner
            port: int = runner.addresses[0][1]
            return port

        self.port = self.run(boot)
        return self

    def stop(self) -> None:
        """Close the server and end its thread; safe to call twice."""
        if not self._thread.is_alive():
            return
        runner = self._runner
        if runner is not None:
            self._runner = None
            with contextlib.suppress(TimeoutError, RuntimeError):
                self.run(runner.cleanup, timeout=self._shutdown_timeout + 10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


_HELD: list[socket.socket] = []  # bound, never listening: connections to them are refused


def closed_port() -> int:
    """A loopback port nothing listens on, for as long as the tests run: it stays bound here
    (never listening), so no other test's server can be given it while it is in use."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    _HELD.append(sock)
    return int(sock.getsockname()[1])


def free_port() -> int:
    """A loopback port free now, for a server a test starts on it (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
