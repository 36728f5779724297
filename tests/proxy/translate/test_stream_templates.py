"""Stream events written from byte templates equal what orjson writes for the same objects."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from driftgate.proxy.sse import Usage, encode_event
from driftgate.proxy.translate.anthropic_response import STOP_TO_ANTHROPIC
from driftgate.proxy.translate.anthropic_stream import AnthropicEncoder
from driftgate.proxy.translate.ir import (
    ArgumentsDelta,
    BlockStart,
    StopReason,
    StreamDone,
    StreamEnd,
    StreamStart,
    TextDelta,
    ThinkingDelta,
)
from driftgate.proxy.translate.openai_stream import OpenAIEncoder

counts = st.integers(0, 2**40)
usages = st.builds(Usage, counts, counts, counts, counts, counts)
stops = st.sampled_from([None, *STOP_TO_ANTHROPIC])
names = st.one_of(st.none(), st.text())


def _anthropic(name: str, body: dict[str, Any]) -> bytes:
    return encode_event(orjson.dumps(body), name)


def _anthropic_usage(u: Usage) -> dict[str, int]:
    return {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
            "cache_creation_input_tokens": u.cache_write_tokens,
            "cache_read_input_tokens": u.cache_read_tokens}  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.text(), st.text(), usages, stops, st.one_of(st.none(), st.text()))
def test_anthropic_message_start_and_delta(
    msg_id: str, model: str, usage: Usage, stop: StopReason | None, sequence: str | None
) -> None:
    shared = Usage()
    encoder = AnthropicEncoder(model, shared)
    shared.merge(usage)
    start = encoder.encode(StreamStart(msg_id or "msg_x", usage))
    message = {"id": msg_id or "msg_x", "type": "message", "role": "assistant", "model": model,
               "content": [], "stop_reason": None, "stop_sequence": None,
               "usage": _anthropic_usage(shared)}  # fmt: skip
    assert start == _anthropic("message_start", {"type": "message_start", "message": message})
    end = encoder.encode(StreamEnd(stop, usage, sequence))
    reason = STOP_TO_ANTHROPIC[stop] if stop else "end_turn"
    delta = {"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": sequence},
             "usage": _anthropic_usage(shared)}  # fmt: skip
    assert end == _anthropic("message_delta", delta)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 10**6), st.text(), names, names)
def test_anthropic_block_starts_and_deltas(
    index: int, text: str, tool_id: str | None, tool_name: str | None
) -> None:
    encoder = AnthropicEncoder("m", Usage())
    encoder.encode(StreamStart("msg_1", Usage()))

    def start(block: dict[str, Any]) -> bytes:
        body = {"type": "content_block_start", "index": index, "content_block": block}
        return _anthropic("content_block_start", body)

    def delta(value: dict[str, Any]) -> bytes:
        body = {"type": "content_block_delta", "index": index, "delta": value}
        return _anthropic("content_block_delta", body)

    assert encoder.encode(BlockStart(index, "tool_call", tool_id, tool_name)) == start(
        {"type": "tool_use", "id": tool_id, "name": tool_name, "input": {}}
    )
    assert encoder.encode(BlockStart(index, "thinking")) == start(
        {"type": "thinking", "thinking": "", "signature": ""}
    )
    assert encoder.encode(ArgumentsDelta(index, text)) == delta(
        {"type": "input_json_delta", "partial_json": text}
    )
    assert encoder.encode(ThinkingDelta(index, text=text)) == delta(
        {"type": "thinking_delta", "thinking": text}
    )
    assert encoder.encode(ThinkingDelta(index, signature=text)) == delta(
        {"type": "signature_delta", "signature": text}
    )


def test_anthropic_text_delta_before_the_start_opens_the_message() -> None:
    encoder = AnthropicEncoder("m", Usage())
    out = encoder.encode(TextDelta(2, 'a"b'))
    assert out.startswith(b"event: message_start\n")
    assert out.endswith(
        _anthropic("content_block_delta", {"type": "content_block_delta", "index": 2,
                                           "delta": {"type": "text_delta", "text": 'a"b'}})
    )  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.text(), st.text(), st.integers(0, 64), names, names, st.text(), usages, st.booleans())
def test_openai_tool_call_and_usage_chunks(
    completion_id: str,
    model: str,
    index: int,
    tool_id: str | None,
    tool_name: str | None,
    arguments: str,
    usage: Usage,
    include_usage: bool,
) -> None:
    shared = Usage()
    encoder = OpenAIEncoder(model, shared, include_usage, lambda: 7.0)
    encoder.encode(StreamStart(completion_id or "chatcmpl-x", Usage()))
    base: dict[str, Any] = {"id": completion_id or "chatcmpl-x", "object": "chat.completion.chunk",
                            "created": 7, "model": model}  # fmt: skip
    tail: dict[str, Any] = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any]) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        return encode_event(orjson.dumps({**base, "choices": [choice], **tail}))

    opened = encoder.encode(BlockStart(index, "tool_call", tool_id, tool_name))
    call = {"index": 0, "id": tool_id, "type": "function",
            "function": {"name": tool_name, "arguments": ""}}  # fmt: skip
    assert opened == chunk({"tool_calls": [call]})
    if arguments:
        assert encoder.encode(ArgumentsDelta(index, arguments)) == chunk(
            {"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]}
        )
    shared.merge(usage)
    encoder.encode(StreamEnd("stop", usage))
    done = encoder.encode(StreamDone())
    assert done.endswith(b"data: [DONE]\n\n")
    if include_usage:
        prompt = shared.input_tokens + shared.cache_read_tokens + shared.cache_write_tokens
        usage_json = {"prompt_tokens": prompt, "completion_tokens": shared.output_tokens,
                      "total_tokens": prompt + shared.output_tokens,
                      "prompt_tokens_details": {"cached_tokens": shared.cache_read_tokens}}  # fmt: skip
        last = encode_event(orjson.dumps({**base, "choices": [], "usage": usage_json}))
        assert done == last + b"data: [DONE]\n\n"
    else:
        assert done == b"data: [DONE]\n\n"
