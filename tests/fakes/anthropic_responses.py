"""The Anthropic Message object and its documented SSE event sequence, for a planned reply."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.fakes.reply_plan import Reply, fragments, words
from tests.fakes.scripted import sse


@dataclass(frozen=True)
class Cache:
    """The prompt-cache token counts the fake reports."""

    cache_read_tokens: int
    cache_creation_tokens: int


def redacted_data(msg_id: str) -> str:
    """The opaque data of the redacted_thinking block answering `msg_id` (base64-like, as the API's)."""
    return "RWR" + msg_id.encode().hex() + "=="


def usage(reply: Reply, output_tokens: int, cache: Cache) -> dict[str, Any]:
    """Anthropic usage: input excludes cached tokens, cache counts reported apart."""
    return {
        "input_tokens": reply.input_tokens,
        "cache_creation_input_tokens": cache.cache_creation_tokens,
        "cache_read_input_tokens": cache.cache_read_tokens,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message(reply: Reply, model: str, msg_id: str, cache: Cache) -> dict[str, Any]:
    """The non-streaming Message object."""
    content: list[dict[str, Any]] = []
    if reply.redacted:
        content.append({"type": "redacted_thinking", "data": redacted_data(msg_id)})
    elif reply.thinking is not None:
        content.append(
            {"type": "thinking", "thinking": reply.thinking, "signature": "sig-fake-" + msg_id}
        )
    if reply.text or not reply.tool_calls:
        content.append({"type": "text", "text": reply.text})
    for call in reply.tool_calls:
        content.append(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": json.loads(call.arguments),
            }
        )
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reply.stop,
        "stop_sequence": reply.stop_sequence,
        "usage": usage(reply, reply.output_tokens, cache),
    }


def events(reply: Reply, model: str, msg_id: str, cache: Cache) -> list[bytes]:
    """The documented event sequence for `reply`."""
    start = message(reply, model, msg_id, cache)
    start.update(content=[], stop_reason=None, stop_sequence=None, usage=usage(reply, 1, cache))
    out = [sse("message_start", {"type": "message_start", "message": start})]
    index = 0

    def block(first: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        nonlocal index
        out.append(
            sse(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": first},
            )
        )
        if index == 0:
            out.append(sse("ping", {"type": "ping"}))
        for d in deltas:
            out.append(
                sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": d},
                )
            )
        out.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1

    if reply.redacted:  # no deltas: the opaque data comes whole with the block's start
        block({"type": "redacted_thinking", "data": redacted_data(msg_id)}, [])
    elif reply.thinking is not None:
        deltas = [{"type": "thinking_delta", "thinking": w} for w in words(reply.thinking)]
        deltas.append({"type": "signature_delta", "signature": "sig-fake-" + msg_id})
        block({"type": "thinking", "thinking": "", "signature": ""}, deltas)
    if reply.text or not reply.tool_calls:
        block(
            {"type": "text", "text": ""},
            [{"type": "text_delta", "text": w} for w in words(reply.text)],
        )
    for call in reply.tool_calls:
        parts = ["", *fragments(call.arguments)]
        block(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": {}},
            [{"type": "input_json_delta", "partial_json": p} for p in parts],
        )
    out.append(
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reply.stop, "stop_sequence": reply.stop_sequence},
                "usage": {"output_tokens": reply.output_tokens},
            },
        )
    )
    out.append(sse("message_stop", {"type": "message_stop"}))
    return out
