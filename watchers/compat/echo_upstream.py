"""A minimal upstream for compat runs only: it answers Anthropic Messages and OpenAI Chat
Completions requests (whole or streamed) with one short text, and keeps what each request held
(body keys and header names and the beta values; never the content) for the comparison.

The test fakes (tests/fakes) validate like the real APIs but are not installed with driftgate;
a compat run only needs a client to complete, so this one accepts any request."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

TEXT = "ok"


@dataclass
class Seen:
    """One request as the echo upstream received it."""

    path: str
    fields: dict[str, Any]
    headers: dict[str, str]


def _anthropic(body: dict[str, Any]) -> dict[str, Any]:
    return {"id": "msg_compat", "type": "message", "role": "assistant", "model": body.get("model", "m"),
            "content": [{"type": "text", "text": TEXT}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}  # fmt: skip


def _anthropic_stream(body: dict[str, Any]) -> bytes:
    msg = _anthropic(body) | {"content": [], "stop_reason": None}
    events = [
        ("message_start", {"type": "message_start", "message": msg}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": TEXT}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                           "stop_sequence": None}, "usage": {"output_tokens": 1}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    return b"".join(
        b"event: " + n.encode() + b"\ndata: " + orjson.dumps(d) + b"\n\n" for n, d in events
    )


def _openai(body: dict[str, Any]) -> dict[str, Any]:
    return {"id": "chatcmpl-compat", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "m"), "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": TEXT}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}  # fmt: skip


def _openai_stream(body: dict[str, Any]) -> bytes:
    base = {"id": "chatcmpl-compat", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": body.get("model", "m")}  # fmt: skip
    chunks = [
        base | {"choices": [{"index": 0, "delta": {"role": "assistant", "content": TEXT},
                             "finish_reason": None}]},
        base | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]  # fmt: skip
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


@dataclass
class EchoUpstream:
    """The server in its own thread; `url` once started; `seen` fills as requests arrive."""

    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        beta = request.headers.get("anthropic-beta", "")
        headers = {k.lower(): "" for k in request.headers}
        headers["anthropic-beta"] = beta
        self.seen.append(
            Seen(request.path, {k: type(v).__name__ for k, v in body.items()}, headers)
        )
        openai = request.path.endswith("/chat/completions")
        if body.get("stream"):
            data = _openai_stream(body) if openai else _anthropic_stream(body)
            return web.Response(body=data, content_type="text/event-stream")
        doc = _openai(body) if openai else _anthropic(body)
        return web.Response(body=orjson.dumps(doc), content_type="application/json")

    def start(self) -> EchoUpstream:
        """Listen on a free loopback port."""
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop

        async def boot() -> None:
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}"

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(boot())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="driftgate-echo", daemon=True)
        self._thread.start()
        ready.wait(30)
        return self

    def stop(self) -> None:
        """Stop the server and its thread."""
        if self._loop is None or self._thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
