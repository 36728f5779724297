"""Documented upstream SSE sequences, built as the real APIs send them, for the stream tests."""

from __future__ import annotations

import json
from typing import Any


def _a(event: str, body: dict[str, Any], compact: bool = False) -> bytes:
    data = (
        json.dumps(body, separators=(",", ":"), ensure_ascii=False) if compact else json.dumps(body)
    )
    return f"event: {event}\ndata: {data}\n\n".encode()


def _o(body: dict[str, Any] | str, compact: bool = False) -> bytes:
    if isinstance(body, str):
        data = body
    else:
        data = (
            json.dumps(body, separators=(",", ":"), ensure_ascii=False)
            if compact
            else json.dumps(body)
        )
    return f"data: {data}\n\n".encode()


def anthropic_text_stream(
    text_parts: tuple[str, ...] = ("Hello", ", wor", "ld — ✓"), compact: bool = False
) -> bytes:
    """A plain text answer with a ping, cache usage and a stop (`compact`: the API's own layout)."""
    out = [
        _a("message_start", {"type": "message_start", "message": {
            "id": "msg_01ABC", "type": "message", "role": "assistant", "content": [],
            "model": "claude-sonnet-4-5", "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 100,
                      "cache_creation_input_tokens": 7}}}),
        _a("content_block_start", {"type": "content_block_start", "index": 0,
                                   "content_block": {"type": "text", "text": ""}}),
        _a("ping", {"type": "ping"}),
    ]  # fmt: skip
    for t in text_parts:
        out.append(_a("content_block_delta", {"type": "content_block_delta", "index": 0,
                                              "delta": {"type": "text_delta", "text": t}}, compact))  # fmt: skip
    out += [
        _a("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _a("message_delta", {"type": "message_delta",
                             "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                             "usage": {"output_tokens": 15}}),
        _a("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    return b"".join(out)


def anthropic_tool_stream() -> bytes:
    """Thinking, text, then two parallel tool calls whose inputs arrive in several fragments."""
    out = [
        _a("message_start", {"type": "message_start", "message": {
            "id": "msg_02TOOL", "type": "message", "role": "assistant", "content": [],
            "model": "claude-sonnet-4-5", "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 400, "output_tokens": 1}}}),
        _a("content_block_start", {"type": "content_block_start", "index": 0,
                                   "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        _a("content_block_delta", {"type": "content_block_delta", "index": 0,
                                   "delta": {"type": "thinking_delta", "thinking": "I should look."}}),
        _a("content_block_delta", {"type": "content_block_delta", "index": 0,
                                   "delta": {"type": "signature_delta", "signature": "EqQBCgIYAh"}}),
        _a("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _a("content_block_start", {"type": "content_block_start", "index": 1,
                                   "content_block": {"type": "text", "text": ""}}),
        _a("content_block_delta", {"type": "content_block_delta", "index": 1,
                                   "delta": {"type": "text_delta", "text": "Checking both."}}),
        _a("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ]  # fmt: skip
    for index, (tid, name, frags) in enumerate(
        [
            ("toolu_01A", "get_weather", ['{"city": ', '"Par', 'is", "unit"', ': "c"}']),
            ("toolu_01B", "get_time", ["", '{"tz": "Europe', '/Paris"}']),
        ],
        start=2,
    ):
        out.append(_a("content_block_start", {"type": "content_block_start", "index": index,
                                              "content_block": {"type": "tool_use", "id": tid,
                                                                "name": name, "input": {}}}))  # fmt: skip
        for f in frags:
            out.append(_a("content_block_delta", {"type": "content_block_delta", "index": index,
                                                  "delta": {"type": "input_json_delta", "partial_json": f}}))  # fmt: skip
        out.append(_a("content_block_stop", {"type": "content_block_stop", "index": index}))
    out += [
        _a("message_delta", {"type": "message_delta",
                             "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                             "usage": {"output_tokens": 89}}),
        _a("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    return b"".join(out)


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-9xyz", "object": "chat.completion.chunk", "created": 1700000000,
            "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_1",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            **extra}  # fmt: skip


def _usage_chunk() -> dict[str, Any]:
    return {"id": "chatcmpl-9xyz", "object": "chat.completion.chunk", "created": 1700000000,
            "model": "gpt-4o-2024-08-06", "choices": [],
            "usage": {"prompt_tokens": 1200, "completion_tokens": 40, "total_tokens": 1240,
                      "prompt_tokens_details": {"cached_tokens": 1024}}}  # fmt: skip


def openai_text_stream(
    with_usage: bool = True,
    text_parts: tuple[str, ...] = ("Hel", "lo ✓", "!"),
    compact: bool = False,
    vary: bool = False,
) -> bytes:
    """A text answer, with the include_usage chunk before [DONE] (`compact`: the API's own
    layout; `vary`: each chunk with its own `created`, so no two chunks share their bytes)."""
    out = [_o(_chunk({"role": "assistant", "content": "", "refusal": None}), compact)]
    for n, t in enumerate(text_parts):
        chunk = _chunk({"content": t})
        if vary:
            chunk["created"] += n + 1
        out.append(_o(chunk, compact))
    out.append(_o(_chunk({}, "stop"), compact))
    if with_usage:
        out.append(_o(_usage_chunk(), compact))
    out.append(_o("[DONE]"))
    return b"".join(out)


def openai_tool_stream() -> bytes:
    """Text then two parallel tool calls, arguments in fragments, finish_reason tool_calls."""
    out = [
        _o(_chunk({"role": "assistant", "content": None})),
        _o(_chunk({"content": "Let me check."})),
        _o(_chunk({"tool_calls": [{"index": 0, "id": "call_A1", "type": "function",
                                   "function": {"name": "get_weather", "arguments": ""}}]})),
        _o(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]})),
        _o(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]})),
        _o(_chunk({"tool_calls": [{"index": 1, "id": "call_B2", "type": "function",
                                   "function": {"name": "get_time", "arguments": ""}}]})),
        _o(_chunk({"tool_calls": [{"index": 1, "function": {"arguments": '{"tz": '}}]})),
        _o(_chunk({"tool_calls": [{"index": 1, "function": {"arguments": '"UTC"}'}}]})),
        _o(_chunk({}, "tool_calls")),
        _o(_usage_chunk()),
        _o("[DONE]"),
    ]  # fmt: skip
    return b"".join(out)
