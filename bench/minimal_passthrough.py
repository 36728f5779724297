"""The ceiling for a Python gateway here: a bare aiohttp server forwarding to one upstream.

No routing, no translation, no accounting: read the body, forward path, query and headers,
relay the answer (chunk by chunk when it is an event stream). `--client httpx` swaps the
upstream client for httpx's own pool, `--client httpx-aiohttp` for httpx over aiohttp's
transport (the httpx-aiohttp package), `--client driftgate` for driftgate's own upstream
client (proxy/upstream/client.py), so the clients can be compared on the same box.

    python bench/minimal_passthrough.py --upstream http://127.0.0.1:9000 --port 0
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

HOP_BY_HOP = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "te",
        "trailer",
    }
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def forward_headers(request: web.Request) -> dict[str, str]:
    """The client's headers minus hop-by-hop ones."""
    return {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}


def aiohttp_handler(upstream: str, session_box: dict[str, aiohttp.ClientSession]) -> Handler:
    """A handler forwarding with one shared aiohttp ClientSession."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        session = session_box["session"]
        async with session.request(
            request.method, upstream + request.path_qs, data=body, headers=forward_headers(request)
        ) as resp:
            ctype = resp.headers.get("content-type", "application/json")
            if ctype.startswith("text/event-stream"):
                out = web.StreamResponse(status=resp.status, headers={"content-type": ctype})
                await out.prepare(request)
                async for chunk in resp.content.iter_any():
                    await out.write(chunk)
                await out.write_eof()
                return out
            data = await resp.read()
            return web.Response(status=resp.status, body=data, headers={"content-type": ctype})

    return handle


def driftgate_handler(upstream: str, box: dict[str, Any]) -> Handler:
    """A handler forwarding POSTs with driftgate's pooled client (other methods: a local 200)."""
    from driftgate.proxy.upstream.client import Timeouts

    bounds = Timeouts(connect=10.0, total=60.0, read=None)

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return web.Response(text="ok")  # the readiness probe; this client only POSTs
        body = await request.read()
        resp = await box["lean"].post(
            upstream + request.path_qs, body, forward_headers(request), bounds
        )
        try:
            ctype = resp.headers.get("content-type", "application/json")
            if ctype.startswith("text/event-stream"):
                out = web.StreamResponse(status=resp.status, headers={"content-type": ctype})
                await out.prepare(request)
                while chunk := await resp.readany():
                    await out.write(chunk)
                await out.write_eof()
                return out
            data = await resp.read()
            return web.Response(status=resp.status, body=data, headers={"content-type": ctype})
        finally:
            resp.release()

    return handle


def httpx_handler(upstream: str, client_box: dict[str, Any]) -> Handler:
    """A handler forwarding with one shared httpx.AsyncClient (for comparison)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        client = client_box["client"]
        req = client.build_request(
            request.method,
            upstream + request.path_qs,
            content=body,
            headers=forward_headers(request),
        )
        resp = await client.send(req, stream=True)
        try:
            ctype = resp.headers.get("content-type", "application/json")
            if ctype.startswith("text/event-stream"):
                out = web.StreamResponse(status=resp.status_code, headers={"content-type": ctype})
                await out.prepare(request)
                async for chunk in resp.aiter_raw():
                    await out.write(chunk)
                await out.write_eof()
                return out
            data = await resp.aread()
            return web.Response(status=resp.status_code, body=data, headers={"content-type": ctype})
        finally:
            await resp.aclose()

    return handle


async def serve(host: str, port: int, upstream: str, client: str) -> None:
    """Serve until SIGTERM/SIGINT."""
    box: dict[str, Any] = {}
    if client == "driftgate":
        from driftgate.proxy.upstream.client import UpstreamClient

        box["lean"] = UpstreamClient()
        handler = driftgate_handler(upstream, box)
    elif client in ("httpx", "httpx-aiohttp"):
        import httpx

        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        if client == "httpx-aiohttp":
            # Not a driftgate dependency: `pip install httpx-aiohttp` to measure this row.
            from httpx_aiohttp import AiohttpTransport

            transport = AiohttpTransport(limits=limits)
            box["client"] = httpx.AsyncClient(transport=transport, limits=limits)
        else:
            box["client"] = httpx.AsyncClient(limits=limits)
        handler = httpx_handler(upstream, box)
    else:
        box["session"] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100), timeout=aiohttp.ClientTimeout(total=60)
        )
        handler = aiohttp_handler(upstream, box)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    assert site._server is not None
    sockets = getattr(site._server, "sockets", None) or []
    print(f"listening on {host}:{sockets[0].getsockname()[1]}", flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        if "session" in box:
            await box["session"].close()
        if "client" in box:
            await box["client"].aclose()
        if "lean" in box:
            await box["lean"].close()


def main() -> None:
    """Parse flags and serve."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--upstream", required=True, help="base URL of the upstream, e.g. http://127.0.0.1:9000"
    )
    parser.add_argument(
        "--client", choices=("aiohttp", "httpx", "httpx-aiohttp", "driftgate"), default="aiohttp"
    )
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.upstream.rstrip("/"), args.client))


if __name__ == "__main__":
    main()
