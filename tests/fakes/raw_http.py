"""Raw-byte HTTP/1.1 servers on loopback: each handler writes exactly the bytes a test needs.

Used by the upstream transports' tests (a real server misbehaving on demand, never a mock).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from multidict import CIMultiDict

GUARD = 5.0  # a hung scenario fails after this long instead of hanging the run
R = TypeVar("R")


def run(scenario: Coroutine[Any, Any, R]) -> R:
    return asyncio.run(asyncio.wait_for(scenario, GUARD))


@dataclass
class Request:
    line: str
    headers: CIMultiDict[str]
    body: bytes


Handler = Callable[["Server", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A loopback server whose handler writes raw bytes; counts connections, records requests."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.connections = 0
        self.requests: list[Request] = []
        self.disconnected = asyncio.Event()  # some connection saw EOF from the client
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", 0, ssl=self.ssl_context
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.handler(self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the server is stopping: both end the handler
        finally:
            self._tasks.discard(task)
            writer.close()

    async def receive(self, reader: asyncio.StreamReader) -> Request | None:
        """The next request on this connection, or None at EOF."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.disconnected.set()
            return None
        line, *fields = head[:-4].decode("latin-1").split("\r\n")
        headers: CIMultiDict[str] = CIMultiDict()
        for field in fields:
            name, _, value = field.partition(":")
            headers.add(name, value.strip())
        body = await reader.readexactly(int(headers.get("Content-Length", "0")))
        request = Request(line, headers, body)
        self.requests.append(request)
        return request

    async def wait_eof(self, reader: asyncio.StreamReader) -> None:
        """Read until the client goes away (EOF or reset), then flag it."""
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass
        self.disconnected.set()


def keep_alive(reply: Callable[[Request], bytes]) -> Handler:
    async def handler(srv: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while (request := await srv.receive(reader)) is not None:
            w.write(reply(request))
            await w.drain()

    return handler


def once(raw: bytes, then_close: bool = False) -> Handler:
    """Answer the first request with `raw`, then close or wait for the client to leave."""

    async def handler(srv: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if await srv.receive(reader) is None:
            return
        w.write(raw)
        await w.drain()
        if not then_close:
            await srv.wait_eof(reader)

    return handler


def response(body: bytes = b"", *fields: str, status: str = "200 OK") -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *fields]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


CHUNKED_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)
