"""OpenAI Chat Completions responses <-> the neutral ChatResponse, and OpenAI's finish reasons."""

from __future__ import annotations

import time
import uuid
from typing import Any

from driftgate.proxy.sse import Usage, openai_usage
from driftgate.proxy.translate.input_checks import list_at, obj_at
from driftgate.proxy.translate.ir import (
    ChatResponse,
    Part,
    StopReason,
    TextPart,
    ThinkingPart,
    ToolCallPart,
)

STOP_FROM_OPENAI: dict[str, StopReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
# OpenAI cannot say "a stop sequence matched" or "paused": both read as a normal stop.
STOP_TO_OPENAI: dict[StopReason, str] = {
    "stop": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "pause": "stop",
}


def new_completion_id() -> str:
    """A synthesised OpenAI-style completion id."""
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def usage_json(usage: Usage) -> dict[str, Any]:
    """An OpenAI `usage` object: prompt_tokens counts cached and cache-written tokens too."""
    prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
    }


def parse_response(body: dict[str, Any]) -> ChatResponse:
    """A non-streamed chat.completion as a ChatResponse (first choice only)."""
    choices = body.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    choice: dict[str, Any] = first if isinstance(first, dict) else {}
    message = obj_at(choice, "message")
    parts: list[Part] = []
    reasoning = message.get("reasoning_content")
    if reasoning and isinstance(reasoning, str):
        parts.append(ThinkingPart(reasoning))
    content = message.get("content")
    if isinstance(content, str):
        if content:
            parts.append(TextPart(content))
    elif isinstance(content, list):
        parts.extend(TextPart(str(c.get("text", ""))) for c in content if isinstance(c, dict))
    refusal = message.get("refusal")
    if refusal and isinstance(refusal, str):
        parts.append(TextPart(refusal))
    for call in list_at(message, "tool_calls"):
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            parts.append(
                ToolCallPart(
                    str(call.get("id", "")),
                    str(fn.get("name", "")),
                    str(fn.get("arguments") or "{}"),
                )
            )
    finish = choice.get("finish_reason")
    rid = body.get("id")
    created = body.get("created")
    # Positional, in ChatResponse's field order: keyword arguments cost twice as much here.
    return ChatResponse(
        rid if isinstance(rid, str) else None,
        tuple(parts),
        STOP_FROM_OPENAI.get(finish, "stop") if isinstance(finish, str) else None,
        openai_usage(body.get("usage")),
        None,
        created if isinstance(created, int) else None,
    )


def render_response(
    resp: ChatResponse, model: str, request: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """A chat.completion body for `resp`, answering as `model`, and what it left out.

    Reasoning has no standard Chat Completions field, so thinking blocks are left out (reported).
    """
    thinking = [p for p in resp.parts if isinstance(p, ThinkingPart)]
    dropped = [("redacted_thinking" if p.redacted is not None else "thinking") for p in thinking]
    texts = [p.text for p in resp.parts if isinstance(p, TextPart)]
    calls = [p for p in resp.parts if isinstance(p, ToolCallPart)]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls
        ]
    body: dict[str, Any] = {
        "id": resp.id or new_completion_id(),
        "object": "chat.completion",
        "created": resp.created or int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": STOP_TO_OPENAI[resp.stop_reason] if resp.stop_reason else "stop",
            }
        ],
        "usage": usage_json(resp.usage),
    }
    return body, dropped
