"""Read translated client streams with the official SDKs' own SSE decoders, types and accumulators."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from anthropic._streaming import SSEDecoder as AnthropicSSEDecoder
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from openai._streaming import SSEDecoder as OpenAISSEDecoder
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import TypeAdapter

_ANTHROPIC_EVENT: TypeAdapter[RawMessageStreamEvent] = TypeAdapter(RawMessageStreamEvent)


@dataclass
class AnthropicRead:
    """What an Anthropic SDK client would see."""

    message: Message | None = None
    events: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None


def read_anthropic(data: bytes) -> AnthropicRead:
    """Validate each event against the SDK's types and accumulate them as MessageStream does."""
    out = AnthropicRead()
    snapshot: Any = None
    json_bufs: dict[int, bytes] = {}
    for sse in AnthropicSSEDecoder().iter_bytes(iter([data])):
        if sse.event is None:
            raise AssertionError(f"Anthropic event without a name: {sse.data!r}")
        out.events.append(sse.event)
        body = json.loads(sse.data)
        assert body["type"] == sse.event, "event name and data type disagree"
        if sse.event == "error":
            out.error = body["error"]
            continue
        event = _ANTHROPIC_EVENT.validate_python(body)
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=json_bufs)
    out.message = snapshot
    return out


@dataclass
class OpenAIRead:
    """What an OpenAI SDK client would see."""

    completion: ChatCompletion | None = None
    chunks: list[ChatCompletionChunk] = field(default_factory=list)
    done_count: int = 0
    error: dict[str, Any] | None = None
    after_done: int = 0


def read_openai(data: bytes) -> OpenAIRead:
    """Validate each chunk as ChatCompletionChunk and accumulate with ChatCompletionStreamState."""
    out = OpenAIRead()
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for sse in OpenAISSEDecoder().iter_bytes(iter([data])):
        if out.done_count:
            out.after_done += 1
        if sse.data.startswith("[DONE]"):
            out.done_count += 1
            continue
        body = json.loads(sse.data)
        if "error" in body:
            out.error = body["error"]
            continue
        chunk = ChatCompletionChunk.model_validate(body)
        out.chunks.append(chunk)
        state.handle_chunk(chunk)
    if out.chunks:
        out.completion = state.get_final_completion()
    return out
