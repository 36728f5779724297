"""A healthchecks.io-style ping endpoint on loopback: records every ping; can be told to fail."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from tests.fakes.server_thread import ServerThread


@dataclass(frozen=True)
class Ping:
    """One ping: the path after the check's URL (`/start`, `` or `/fail`) and its body."""

    suffix: str
    body: str


class PingServer:
    """`url` is the check's ping URL (`http://127.0.0.1:PORT/ping/CHECK-UUID`)."""

    CHECK = "/ping/5f1c6a42-0000-4000-8000-canary000001"

    def __init__(self) -> None:
        self.pings: list[Ping] = []
        self.status = 200
        self.arrived = threading.Condition()
        app = web.Application()
        app.router.add_route("*", self.CHECK + "{suffix:.*}", self._ping)
        self.server = ServerThread(app)

    @property
    def url(self) -> str:
        """The ping URL to configure."""
        return self.server.url + self.CHECK

    async def _ping(self, request: web.Request) -> web.Response:
        with self.arrived:
            self.pings.append(Ping(request.match_info["suffix"], await request.text()))
            self.arrived.notify_all()
        return web.Response(status=self.status, text="OK")

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Ping]:
        """Block until `count` pings arrived (a subprocess pings on its own time)."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.pings) >= count, timeout)
            return list(self.pings)


@pytest.fixture
def ping_server() -> Iterator[PingServer]:
    """A started PingServer."""
    server = PingServer()
    server.server.start()
    try:
        yield server
    finally:
        server.server.stop()
