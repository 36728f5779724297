"""An aiohttp application served on a free loopback port from its own thread (the compat run's
echo upstream and its tap between the client and the gateway)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Self

from aiohttp import web


class LoopbackServer:
    """`start()` returns once it listens (`url` is set); `stop()` closes it and its thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._cleanups: list[Callable[[], Awaitable[None]]] = []

    def routes(self, app: web.Application) -> None:
        """Add the server's routes to `app`."""
        raise NotImplementedError

    def on_stop(self, cleanup: Callable[[], Awaitable[None]]) -> None:
        """Run `cleanup` in the server's loop when it stops (close a client session...)."""
        self._cleanups.append(cleanup)

    def start(self) -> Self:
        """Listen on 127.0.0.1, port 0 (a free port)."""
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop

        async def boot() -> None:
            app = web.Application(client_max_size=64 * 1024 * 1024)
            self.routes(app)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}"

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(boot())
            except BaseException as exc:  # handed to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"driftgate-{self.name}", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop the server and its thread."""
        if self._loop is None or self._thread is None:
            return

        async def close() -> None:
            for cleanup in self._cleanups:
                await cleanup()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = None
