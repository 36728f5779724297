"""The compat echo upstream's answers, one short text in each API's documented shape: Anthropic
Messages, OpenAI Chat Completions and OpenAI Responses, whole or as the documented event stream."""

from __future__ import annotations

import time
from typing import Any

import orjson

TEXT = "ok"


def sse(events: list[tuple[str | None, dict[str, Any]]]) -> bytes:
    """Server-sent events: `event:` lines where the API names its events, then `data:`."""
    out = b""
    for name, data in events:
        head = b"event: " + name.encode() + b"\n" if name else b""
        out += head + b"data: " + orjson.dumps(data) + b"\n\n"
    return out


def messages(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Message."""
    return {"id": "msg_compat", "type": "message", "role": "assistant", "model": body.get("model", "m"),
            "content": [{"type": "text", "text": TEXT}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}  # fmt: skip


def messages_stream(body: dict[str, Any]) -> bytes:
    """An Anthropic Message as its event stream."""
    msg = messages(body) | {"content": [], "stop_reason": None}
    return sse([
        ("message_start", {"type": "message_start", "message": msg}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": TEXT}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                           "stop_sequence": None}, "usage": {"output_tokens": 1}}),
        ("message_stop", {"type": "message_stop"}),
    ])  # fmt: skip


def chat(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI chat.completion."""
    return {"id": "chatcmpl-compat", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "m"), "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": TEXT}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}  # fmt: skip


def chat_stream(body: dict[str, Any]) -> bytes:
    """An OpenAI chat.completion as its chunks, then [DONE]."""
    base = {"id": "chatcmpl-compat", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": body.get("model", "m")}  # fmt: skip
    chunks: list[tuple[str | None, dict[str, Any]]] = [
        (None, base | {"choices": [{"index": 0, "delta": {"role": "assistant", "content": TEXT},
                                    "finish_reason": None}]}),
        (None, base | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
    ]  # fmt: skip
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        chunks.append((None, base | {"choices": [], "usage": usage}))
    return sse(chunks) + b"data: [DONE]\n\n"


def response(body: dict[str, Any], *, done: bool = True) -> dict[str, Any]:
    """An OpenAI Response object echoing the request's settings (in progress, or completed)."""
    item = {"id": "msg_compat", "type": "message", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": TEXT, "annotations": [], "logprobs": []}]}  # fmt: skip
    usage = {"input_tokens": 1, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 1,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 2}  # fmt: skip
    return {
        "id": "resp_compat", "object": "response", "created_at": int(time.time()),
        "status": "completed" if done else "in_progress", "background": False, "error": None,
        "incomplete_details": None, "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"), "model": body.get("model", "m"),
        "output": [item] if done else [], "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"), "summary": None},
        "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0), "truncation": "disabled",
        "usage": usage if done else None, "user": None, "metadata": body.get("metadata") or {},
    }  # fmt: skip


def response_stream(body: dict[str, Any]) -> bytes:
    """A Response as the documented event sequence, sequence numbers from 0."""
    final = response(body)
    item = final["output"][0]
    part = item["content"][0]
    where = {"item_id": item["id"], "output_index": 0}
    steps: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": response(body, done=False)}),
        ("response.in_progress", {"response": response(body, done=False)}),
        ("response.output_item.added", {"output_index": 0,
                                        "item": item | {"status": "in_progress", "content": []}}),
        ("response.content_part.added", where | {"content_index": 0, "part": part | {"text": ""}}),
        ("response.output_text.delta", where | {"content_index": 0, "delta": TEXT, "logprobs": []}),
        ("response.output_text.done", where | {"content_index": 0, "text": TEXT, "logprobs": []}),
        ("response.content_part.done", where | {"content_index": 0, "part": part}),
        ("response.output_item.done", {"output_index": 0, "item": item}),
        ("response.completed", {"response": final}),
    ]  # fmt: skip
    return sse([(n, {"type": n, "sequence_number": i, **d}) for i, (n, d) in enumerate(steps)])


def models(anthropic: bool) -> dict[str, Any]:
    """A model list in the asking dialect."""
    if anthropic:
        return {"data": [{"type": "model", "id": "claude-sonnet-4-6", "display_name": "compat",
                          "created_at": "2026-01-01T00:00:00Z"}],
                "has_more": False, "first_id": "claude-sonnet-4-6", "last_id": "claude-sonnet-4-6"}  # fmt: skip
    return {"object": "list", "data": [{"id": "gpt-5", "object": "model", "created": 0,
                                        "owned_by": "compat"}]}  # fmt: skip
