"""The base of both fake upstreams: recording, scripted misbehaviour, SSE streaming, disconnects."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import socket
import struct
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Self

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from tests.fakes.behaviour import Behaviour, RecordedRequest
from tests.fakes.server_thread import ServerThread

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BEHAVIOUR: web.RequestKey[Behaviour | None] = web.RequestKey("behaviour", Behaviour | None)  # type: ignore[arg-type]


class FakeUpstream:
    """A scripted upstream on loopback; subclasses add one dialect's routes."""

    def __init__(self, *, require_auth: bool = True, api_key: str | None = None) -> None:
        self.require_auth = require_auth
        self.api_key = api_key  # when set, only this key is accepted
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        self.disconnected = threading.Event()
        self._queue: collections.deque[tuple[str | None, Behaviour]] = collections.deque()
        self._lock = threading.Lock()
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        self.add_routes(app)
        self.server = ServerThread(app)

    # -- lifecycle -------------------------------------------------------
    def start(self) -> Self:
        """Serve on a free loopback port."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.server.stop()

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>` (no `/v1`)."""
        return self.server.url

    # -- test-facing -----------------------------------------------------
    def script(self, *behaviours: Behaviour, path: str | None = None) -> None:
        """Queue behaviours for the next requests (any POST, or only those to `path`)."""
        with self._lock:
            self._queue.extend((path, b) for b in behaviours)

    @property
    def last(self) -> RecordedRequest:
        """The most recent request (raises if none arrived)."""
        if not self.requests:
            raise AssertionError("the fake upstream received no request")
        return self.requests[-1]

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """Recorded requests to one path."""
        return [r for r in self.requests if r.path == path]

    # -- subclass hooks --------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        """Attach the dialect's routes."""
        raise NotImplementedError

    def error_response(self, status: int, message: str | None = None) -> web.Response:
        """An error in the dialect's own shape."""
        raise NotImplementedError

    # -- machinery -------------------------------------------------------
    def _next_behaviour(self, method: str, path: str) -> Behaviour | None:
        with self._lock:
            for i, (want, b) in enumerate(self._queue):
                if (want is None and method == "POST") or want == path:
                    del self._queue[i]
                    return b
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read()
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=CIMultiDictProxy(CIMultiDict(request.headers)),
                body_bytes=body,
                json=parsed,
            )
        )
        behaviour = self._next_behaviour(request.method, request.path)
        request[BEHAVIOUR] = behaviour
        if behaviour is not None:
            if behaviour.kind == "status":
                return self._status_response(behaviour)
            if behaviour.kind == "reset":
                return self._reset(request)
            if behaviour.kind == "stall" and not await self.sleep_watching(
                request, behaviour.seconds
            ):
                return web.Response(status=499)
            slow_answer = behaviour.kind == "slow_stream" and not _wants_stream(parsed)
            if slow_answer and not await self.sleep_watching(request, behaviour.seconds):
                return web.Response(status=499)
        return await handler(request)

    def _status_response(self, b: Behaviour) -> web.Response:
        if b.body is None:
            resp = self.error_response(b.code)
        elif isinstance(b.body, bytes | str):
            resp = web.Response(
                status=b.code, body=b.body if isinstance(b.body, bytes) else b.body.encode()
            )
        else:
            resp = web.json_response(b.body, status=b.code)
        resp.headers.update(b.headers)
        return resp

    def _reset(self, request: web.Request) -> web.Response:
        transport = request.transport
        if transport is not None:
            sock: socket.socket | None = transport.get_extra_info("socket")
            if sock is not None:
                # SO_LINGER 0 turns close() into an RST, as a crashed upstream would send.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        return web.Response(status=499)

    def _saw_disconnect(self) -> None:
        self.disconnects += 1
        self.disconnected.set()

    async def sleep_watching(self, request: web.Request, seconds: float) -> bool:
        """Sleep, noticing a client disconnect; False when the client went away."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            transport = request.transport
            if transport is None or transport.is_closing():
                self._saw_disconnect()
                return False
            left = deadline - loop.time()
            if left <= 0:
                return True
            await asyncio.sleep(min(left, 0.02))

    async def answer(
        self, request: web.Request, payload: Any, headers: dict[str, str] | None = None
    ) -> web.StreamResponse:
        """A JSON answer; `malformed_sse` breaks its JSON, `truncate` cuts it off mid-body."""
        b: Behaviour | None = request[BEHAVIOUR]
        body = json.dumps(payload).encode()
        if b is not None and b.kind == "malformed_sse":
            return web.Response(
                status=200, body=body[: len(body) // 2], content_type="application/json"
            )
        if b is None or b.kind != "truncate":
            return web.json_response(payload, headers=headers)
        resp = web.StreamResponse(
            status=200,
            headers={"Content-Type": "application/json", "Content-Length": str(len(body))},
        )
        await resp.prepare(request)
        await resp.write(body[: len(body) // 2])
        transport = request.transport
        if transport is not None:
            transport.close()
        return resp

    async def stream(
        self,
        request: web.Request,
        events: Iterable[bytes],
        *,
        broken: bytes,
        error_event: Callable[[str], bytes],
        headers: dict[str, str] | None = None,
    ) -> web.StreamResponse:
        """Send SSE events, applying the scripted misbehaviour, and notice a disconnect."""
        b = request[BEHAVIOUR] or Behaviour("normal")
        resp = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                **(headers or {}),
            },
        )
        await resp.prepare(request)
        try:
            for i, event in enumerate(events):
                if i == b.after_events and b.kind == "truncate":
                    transport = request.transport
                    if transport is not None:
                        transport.close()
                    return resp
                if i == b.after_events and b.kind == "stream_error":
                    await resp.write(error_event(b.error_type))
                    return await _finish(resp)
                if i == b.after_events and b.kind == "malformed_sse":
                    await resp.write(broken)
                if b.kind == "slow_stream" and not await self.sleep_watching(request, b.seconds):
                    return resp
                await resp.write(event)
        except (ConnectionError, RuntimeError):
            self._saw_disconnect()
            return resp
        return await _finish(resp)


async def _finish(resp: web.StreamResponse) -> web.StreamResponse:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await resp.write_eof()
    return resp


def _wants_stream(parsed: Any) -> bool:
    return isinstance(parsed, dict) and bool(parsed.get("stream"))


def sse(event: str | None, data: Any) -> bytes:
    """One SSE frame: optional `event:` line, one `data:` line, blank line."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()
