"""A TCP forwarder on loopback that can lose replies: the request reaches the server, the server
acts on it, and the connection closes before the answer gets back (a reply lost in transit). It
can also go away for a while (`go_away`, `come_back`): an outage that keeps the server's data."""

from __future__ import annotations

import asyncio
import contextlib


class CuttingProxy:
    """Forwards every connection to 127.0.0.1:`target`; `cut_replies_to` arms the loss."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self.cuts = 0  # replies lost so far
        self._marker: bytes | None = None
        self._left = 0
        self._server: asyncio.Server | None = None
        self._away = False
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> CuttingProxy:
        """Listen on a free loopback port (in the running loop)."""
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        """redis://127.0.0.1:PORT/0 (the proxy in front of a Redis)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def cut_replies_to(self, marker: bytes, times: int = 1) -> None:
        """Lose the reply to the next `times` requests whose bytes contain `marker`."""
        self._marker, self._left = marker, times

    def go_away(self) -> None:
        """Close every connection and each new one at once, until `come_back`."""
        self._away = True
        for writer in list(self._open):
            writer.close()

    def come_back(self) -> None:
        """Forward new connections again (the server kept its data meanwhile)."""
        self._away = False

    async def _connection(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        if self._away:
            client_w.close()
            return
        self._open.add(client_w)
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target)
        cut = asyncio.Event()  # the next reply on this connection is to be lost

        async def up() -> None:
            while data := await client_r.read(65536):
                if self._marker is not None and self._left > 0 and self._marker in data:
                    self._left -= 1
                    cut.set()
                server_w.write(data)
                await server_w.drain()

        async def down() -> None:
            while data := await server_r.read(65536):
                if cut.is_set():
                    self.cuts += 1
                    return  # the server has answered (so it acted): the client never hears it
                client_w.write(data)
                await client_w.drain()

        try:
            tasks = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._open.discard(client_w)
            for writer in (client_w, server_w):
                writer.close()
                with contextlib.suppress(OSError, ConnectionError):
                    await writer.wait_closed()

    async def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
