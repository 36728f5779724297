"""Anthropic Messages responses <-> the neutral ChatResponse, and Anthropic's stop reasons."""

from __future__ import annotations

import uuid
from typing import Any

from driftgate.proxy.sse import Usage, anthropic_usage
from driftgate.proxy.translate.input_checks import arguments_object, dumps, list_at
from driftgate.proxy.translate.ir import (
    ChatResponse,
    Part,
    StopReason,
    TextPart,
    ThinkingPart,
    ToolCallPart,
)

# "refusal" <-> OpenAI's content_filter: both mean the provider's safety layer ended the answer.
STOP_FROM_ANTHROPIC: dict[str, StopReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop_sequence",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "pause",
}
STOP_TO_ANTHROPIC: dict[StopReason, str] = {
    "stop": "end_turn",
    "stop_sequence": "stop_sequence",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "pause": "pause_turn",
}


def new_message_id() -> str:
    """A synthesised Anthropic-style message id."""
    return "msg_" + uuid.uuid4().hex[:24]


def usage_json(usage: Usage) -> dict[str, int]:
    """An Anthropic `usage` object."""
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
    }


def parse_response(body: dict[str, Any]) -> ChatResponse:
    """A non-streamed Anthropic message as a ChatResponse."""
    parts: list[Part] = []
    for block in list_at(body, "content"):
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append(TextPart(str(block.get("text", ""))))
        elif kind == "tool_use":
            parts.append(
                ToolCallPart(
                    str(block.get("id", "")),
                    str(block.get("name", "")),
                    dumps(block.get("input", {})),
                )
            )
        elif kind == "thinking":
            parts.append(ThinkingPart(str(block.get("thinking", "")), block.get("signature")))
        elif kind == "redacted_thinking":
            parts.append(ThinkingPart("", redacted=str(block.get("data", ""))))
    stop, rid, sequence = body.get("stop_reason"), body.get("id"), body.get("stop_sequence")
    # Positional, in ChatResponse's field order: keyword arguments cost twice as much here.
    return ChatResponse(
        rid if isinstance(rid, str) else None,
        tuple(parts),
        STOP_FROM_ANTHROPIC.get(stop, "stop") if isinstance(stop, str) else None,
        anthropic_usage(body.get("usage")),
        sequence if isinstance(sequence, str) else None,
    )


def render_response(
    resp: ChatResponse, model: str, request: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """An Anthropic message body for `resp`, answering as `model`, and what it left out (nothing)."""
    content: list[dict[str, Any]] = []
    for p in resp.parts:
        if isinstance(p, TextPart):
            content.append({"type": "text", "text": p.text})
        elif isinstance(p, ToolCallPart):
            content.append(
                {"type": "tool_use", "id": p.id, "name": p.name,
                 "input": arguments_object(p.arguments, "response", strict=False)}
            )  # fmt: skip
        elif isinstance(p, ThinkingPart) and p.redacted is None:
            # Unsigned reasoning (from an OpenAI-compatible server) keeps an empty signature;
            # it is dropped again if the client sends it back to Anthropic.
            content.append({"type": "thinking", "thinking": p.text, "signature": p.signature or ""})
        elif isinstance(p, ThinkingPart):
            content.append({"type": "redacted_thinking", "data": p.redacted})
    body: dict[str, Any] = {
        "id": resp.id or new_message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": STOP_TO_ANTHROPIC[resp.stop_reason] if resp.stop_reason else "end_turn",
        "stop_sequence": resp.stop_sequence,
        "usage": usage_json(resp.usage),
    }
    return body, []
