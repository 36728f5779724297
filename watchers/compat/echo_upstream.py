"""A minimal upstream for compat runs only: it answers Anthropic Messages (and count_tokens),
OpenAI Chat Completions and OpenAI Responses requests, whole or streamed, with one short text in
each API's documented shape (echo_answers.py), lists models, and keeps what each request held
(body keys and their JSON types, header names and the beta values; never the content) for the
comparison.

The test fakes (tests/fakes) validate like the real APIs but are not installed with driftgate;
a compat run only needs a client to complete, so this one accepts any request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from driftgate.watchers.compat import echo_answers as answers
from driftgate.watchers.compat.loopback import LoopbackServer


@dataclass
class Seen:
    """One request as the echo upstream received it."""

    path: str
    fields: dict[str, Any]
    headers: dict[str, str]


def _json(doc: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(doc), content_type="application/json")


def _events(data: bytes) -> web.Response:
    return web.Response(body=data, content_type="text/event-stream")


class EchoUpstream(LoopbackServer):
    """The echo upstream; `seen` fills as requests arrive."""

    def __init__(self) -> None:
        super().__init__("echo")
        self.seen: list[Seen] = []

    def routes(self, app: web.Application) -> None:
        """Every path: the answer is chosen by the path's ending, as each API names it."""
        app.router.add_route("GET", "/{tail:.*}", self._get)
        app.router.add_route("POST", "/{tail:.*}", self._post)

    async def _get(self, request: web.Request) -> web.StreamResponse:
        if request.path.rstrip("/").endswith("/models"):
            return _json(answers.models("anthropic-version" in request.headers))
        raise web.HTTPNotFound()

    async def _post(self, request: web.Request) -> web.StreamResponse:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        headers = {k.lower(): "" for k in request.headers}
        headers["anthropic-beta"] = request.headers.get("anthropic-beta", "")
        fields = {k: type(v).__name__ for k, v in body.items()}
        self.seen.append(Seen(request.path, fields, headers))
        path = request.path.rstrip("/")
        stream = bool(body.get("stream"))
        if path.endswith("/messages/count_tokens"):
            return _json({"input_tokens": 1})
        if path.endswith("/chat/completions"):
            return _events(answers.chat_stream(body)) if stream else _json(answers.chat(body))
        if path.endswith("/responses"):
            if stream:
                return _events(answers.response_stream(body))
            return _json(answers.response(body))
        if stream:
            return _events(answers.messages_stream(body))
        return _json(answers.messages(body))
