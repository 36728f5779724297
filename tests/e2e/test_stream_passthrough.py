"""True pass-through: the client gets each event while the upstream is still waiting to send the next.

The upstream sends its first text, then waits until the client has *received* that text before it
sends the rest. A gateway that buffered would starve the client and the upstream would give up
waiting; nothing here measures time.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
import pytest
from aiohttp import web

from driftgate.proxy.config import BackendConfig
from tests.fakes.server_thread import ServerThread

GIVE_UP = 20.0  # seconds the upstream waits for the client before it sends the rest anyway


@dataclass
class Lockstep:
    """Shared between the test (the client side) and the upstream."""

    received_first: threading.Event = field(default_factory=threading.Event)
    waited_for_client: list[bool] = field(default_factory=list)


def sse(event: str | None, data: Any) -> bytes:
    head = f"event: {event}\n" if event else ""
    body = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {body}\n\n".encode()


ANTHROPIC_FIRST = [
    sse("message_start", {"type": "message_start", "message": {
        "id": "msg_lock", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1}}}),
    sse("content_block_start", {"type": "content_block_start", "index": 0,
                                "content_block": {"type": "text", "text": ""}}),
    sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                "delta": {"type": "text_delta", "text": "first"}}),
]  # fmt: skip
ANTHROPIC_REST = [
    sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                "delta": {"type": "text_delta", "text": " second"}}),
    sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
    sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                          "stop_sequence": None}, "usage": {"output_tokens": 2}}),
    sse("message_stop", {"type": "message_stop"}),
]  # fmt: skip


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return sse(None, {"id": "chatcmpl-lock", "object": "chat.completion.chunk", "created": 1,
                      "model": "gpt-4o", "choices": [{"index": 0, "delta": delta,
                                                      "finish_reason": finish}]})  # fmt: skip


OPENAI_FIRST = [chunk({"role": "assistant", "content": "first"})]
OPENAI_REST = [chunk({"content": " second"}), chunk({}, "stop"), sse(None, "[DONE]")]


def lockstep_upstream(state: Lockstep, first: list[bytes], rest: list[bytes]) -> web.Application:
    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for event in first:
            await resp.write(event)
        got = await asyncio.to_thread(state.received_first.wait, GIVE_UP)
        state.waited_for_client.append(got)
        for event in rest:
            await resp.write(event)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/messages", handler)
    app.router.add_post("/v1/chat/completions", handler)
    return app


@pytest.fixture(params=["anthropic", "openai"])
def upstream(request: pytest.FixtureRequest) -> Iterator[tuple[str, Lockstep, ServerThread]]:
    state = Lockstep()
    kind = str(request.param)
    first, rest = (
        (ANTHROPIC_FIRST, ANTHROPIC_REST) if kind == "anthropic" else (OPENAI_FIRST, OPENAI_REST)
    )
    with ServerThread(lockstep_upstream(state, first, rest)) as server:
        yield kind, state, server


def gateway_for(gateway_factory: Any, kind: str, server: ServerThread) -> Any:
    base = server.url if kind == "anthropic" else server.url + "/v1"
    backend = BackendConfig(name="up", kind=kind, base_url=base, key="k", models=("lock-*",))
    return gateway_factory(backends=[backend])


def test_anthropic_client_gets_each_event_as_the_upstream_sends_it(
    gateway_factory: Any, upstream: tuple[str, Lockstep, ServerThread]
) -> None:
    kind, state, server = upstream
    gw = gateway_for(gateway_factory, kind, server)
    client = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0)
    texts = []
    with client.messages.create(
        model="lock-model", max_tokens=10, stream=True, messages=[{"role": "user", "content": "x"}]
    ) as events:
        for event in events:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                texts.append(event.delta.text)
                state.received_first.set()
    assert "".join(texts) == "first second"
    assert state.waited_for_client == [True]  # the first text reached the client unbuffered


def test_openai_client_gets_each_chunk_as_the_upstream_sends_it(
    gateway_factory: Any, upstream: tuple[str, Lockstep, ServerThread]
) -> None:
    kind, state, server = upstream
    gw = gateway_for(gateway_factory, kind, server)
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0)
    texts = []
    for c in client.chat.completions.create(
        model="lock-model", stream=True, messages=[{"role": "user", "content": "x"}]
    ):
        if c.choices and c.choices[0].delta.content:
            texts.append(c.choices[0].delta.content)
            state.received_first.set()
    assert "".join(texts) == "first second"
    assert state.waited_for_client == [True]
