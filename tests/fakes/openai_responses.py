"""The OpenAI chat.completion object and its chunk sequence, for a planned reply."""

from __future__ import annotations

from typing import Any

from tests.fakes.reply_plan import Reply, fragments, words
from tests.fakes.scripted import sse

FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


def usage(reply: Reply, cached_tokens: int) -> dict[str, Any]:
    """OpenAI usage: prompt_tokens includes the cached ones."""
    prompt = reply.input_tokens + cached_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": reply.output_tokens,
        "total_tokens": prompt + reply.output_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion(reply: Reply, model: str, completion_id: str, cached_tokens: int) -> dict[str, Any]:
    """The non-streaming chat.completion object."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.text if (reply.text or not reply.tool_calls) else None,
        "refusal": None,
        "annotations": [],
    }
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for c in reply.tool_calls
        ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": 1767225600,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": FINISH[reply.stop],
            }
        ],
        "usage": usage(reply, cached_tokens),
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }


def chunks(
    reply: Reply, model: str, completion_id: str, include_usage: bool, cached_tokens: int
) -> list[bytes]:
    """The documented chunk sequence for `reply`, ending in `data: [DONE]`."""

    def chunk(delta: dict[str, Any] | None, finish: str | None = None) -> bytes:
        out: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": 1767225600,
            "model": model,
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            out["usage"] = usage(reply, cached_tokens) if delta is None else None
        return sse(None, out)

    out = [chunk({"role": "assistant", "content": "", "refusal": None})]
    out += [chunk({"content": w}) for w in words(reply.text)]
    for k, call in enumerate(reply.tool_calls):
        out.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": k,
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            )
        )
        out += [
            chunk({"tool_calls": [{"index": k, "function": {"arguments": f}}]})
            for f in fragments(call.arguments)
        ]
    out.append(chunk({}, FINISH[reply.stop]))
    if include_usage:
        out.append(chunk(None))
    out.append(b"data: [DONE]\n\n")
    return out
