"""A pass-through between the client and the gateway in a compat run: every request goes on
unchanged, every answer comes back unchanged (streams as they stream), and what the gateway says
it did to a request (`x-driftgate-dropped`, `x-driftgate-adjusted`) is kept for the report."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from driftgate.watchers.compat.loopback import LoopbackServer

SAID = ("x-driftgate-dropped", "x-driftgate-adjusted")
# Set per hop, by the HTTP layer on each side: not passed through.
HOP = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive"})


class Tap(LoopbackServer):
    """Forwards to `target`; `said` maps each header in SAID to the names the gateway gave."""

    def __init__(self, target: str) -> None:
        super().__init__("tap")
        self.target = target.rstrip("/")
        self.said: dict[str, list[str]] = {h: [] for h in SAID}
        self._session: aiohttp.ClientSession | None = None

    def routes(self, app: web.Application) -> None:
        """Every method and path."""
        app.router.add_route("*", "/{tail:.*}", self._forward)

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
            self._session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
            self.on_stop(self._session.close)
        return self._session

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        session = await self._client()
        async with session.request(
            request.method, self.target + request.path_qs, headers=headers,
            data=await request.read(), allow_redirects=False,
        ) as answer:  # fmt: skip
            for name in SAID:
                for value in answer.headers.getall(name, []):
                    self.said[name] += [n.strip() for n in value.split(",") if n.strip()]
            out = web.StreamResponse(status=answer.status, reason=answer.reason)
            for k, v in answer.headers.items():
                if k.lower() not in HOP:
                    out.headers.add(k, v)
            await out.prepare(request)
            async for chunk in answer.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out
