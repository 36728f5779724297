"""Non-streamed responses both ways, usage, and upstream errors across dialects."""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion

from driftgate.proxy.sse import Usage
from driftgate.proxy.translate import translate_error, translate_response, usage_from_response

ANTHROPIC_RESPONSE: dict[str, Any] = {
    "id": "msg_01XYZ",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "Let me think.", "signature": "sig"},
        {"type": "text", "text": "Checking the weather."},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "time", "input": {}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 50,
        "output_tokens": 30,
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 200,
    },
}

OPENAI_RESPONSE: dict[str, Any] = {
    "id": "chatcmpl-abc",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Checking.",
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "time", "arguments": "not json"},
                    },
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 1300,
        "completion_tokens": 30,
        "total_tokens": 1330,
        "prompt_tokens_details": {"cached_tokens": 1024},
    },
}


def test_anthropic_response_to_openai() -> None:
    out = translate_response(ANTHROPIC_RESPONSE, "anthropic", "openai", model="my-alias").body
    parsed = ChatCompletion.model_validate(out)
    assert parsed.id == "msg_01XYZ" and parsed.model == "my-alias"
    choice = parsed.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking the weather."  # thinking dropped
    calls = choice.message.tool_calls or []
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [  # type: ignore[union-attr]
        ("toolu_1", "weather", {"city": "Paris"}),
        ("toolu_2", "time", {}),
    ]
    # OpenAI's prompt_tokens includes cache reads and writes; Anthropic's input_tokens does not.
    assert parsed.usage is not None
    assert parsed.usage.prompt_tokens == 1250 and parsed.usage.completion_tokens == 30
    assert parsed.usage.total_tokens == 1280
    assert parsed.usage.prompt_tokens_details is not None
    assert parsed.usage.prompt_tokens_details.cached_tokens == 1000


def test_thinking_left_out_of_an_openai_answer_is_reported() -> None:
    out = translate_response(ANTHROPIC_RESPONSE, "anthropic", "openai", model="m")
    assert out.dropped == ("thinking",)
    plain = {**ANTHROPIC_RESPONSE, "content": [{"type": "text", "text": "x"}]}
    assert translate_response(plain, "anthropic", "openai", model="m").dropped == ()
    assert translate_response(OPENAI_RESPONSE, "openai", "anthropic", model="m").dropped == ()


def test_openai_response_to_anthropic() -> None:
    out = translate_response(OPENAI_RESPONSE, "openai", "anthropic", model="claude-alias").body
    parsed = Message.model_validate(out)
    assert parsed.id == "chatcmpl-abc" and parsed.model == "claude-alias"
    assert parsed.stop_reason == "tool_use"
    assert [b.type for b in parsed.content] == ["text", "tool_use", "tool_use"]
    assert parsed.content[1].input == {"city": "Paris"}  # type: ignore[union-attr]
    assert parsed.content[2].input == {"_unparsed_arguments": "not json"}  # type: ignore[union-attr]
    assert parsed.usage.input_tokens == 276 and parsed.usage.cache_read_input_tokens == 1024
    assert parsed.usage.output_tokens == 30


@pytest.mark.parametrize(
    ("anthropic", "openai"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
     ("tool_use", "tool_calls"), ("refusal", "content_filter"), ("pause_turn", "stop")],
)  # fmt: skip
def test_stop_reasons_anthropic_to_openai(anthropic: str, openai: str) -> None:
    body = {**ANTHROPIC_RESPONSE, "stop_reason": anthropic}
    out = translate_response(body, "anthropic", "openai", model="m").body
    assert out["choices"][0]["finish_reason"] == openai


@pytest.mark.parametrize(
    ("openai", "anthropic"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"),
     ("content_filter", "refusal"), ("function_call", "tool_use")],
)  # fmt: skip
def test_stop_reasons_openai_to_anthropic(openai: str, anthropic: str) -> None:
    body = json.loads(json.dumps(OPENAI_RESPONSE))
    body["choices"][0]["finish_reason"] = openai
    out = translate_response(body, "openai", "anthropic", model="m").body
    assert out["stop_reason"] == anthropic
    Message.model_validate(out)


def test_synthesised_ids_have_the_dialect_prefix() -> None:
    a = translate_response(
        {"choices": [{"message": {"content": "x"}}]}, "openai", "anthropic", model="m"
    ).body
    o = translate_response(
        {"content": [{"type": "text", "text": "x"}]}, "anthropic", "openai", model="m"
    ).body
    assert a["id"].startswith("msg_") and o["id"].startswith("chatcmpl-")
    assert Message.model_validate(a).content[0].text == "x"  # type: ignore[union-attr]
    assert ChatCompletion.model_validate(o).choices[0].message.content == "x"


def test_usage_from_response_both_dialects() -> None:
    assert usage_from_response(ANTHROPIC_RESPONSE, "anthropic") == Usage(50, 30, 1000, 200)
    assert usage_from_response(OPENAI_RESPONSE, "openai") == Usage(276, 30, 1024, 0)
    assert usage_from_response({}, "openai") == Usage()


def test_error_anthropic_to_openai_keeps_message() -> None:
    raw = json.dumps(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    ).encode()
    out = translate_error(529, raw, "anthropic", "openai")
    assert out == {
        "error": {"message": "Overloaded", "type": "server_error", "param": None, "code": None}
    }


def test_error_openai_to_anthropic_keeps_message() -> None:
    raw = json.dumps(
        {
            "error": {
                "message": "Rate limit reached",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
        }
    ).encode()
    out = translate_error(429, raw, "openai", "anthropic")
    assert out == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Rate limit reached"},
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "upstream returned HTTP 502"),
        (b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
        (b'{"detail": "model not loaded"}', "model not loaded"),
        (b'{"error": "plain string error"}', "plain string error"),
        (b"\xff\xfe garbage", "\ufffd\ufffd garbage"),
    ],
)
def test_error_with_unusual_bodies(raw: bytes, message: str) -> None:
    out = translate_error(502, raw, "openai", "anthropic")
    assert out["error"]["message"] == message and out["error"]["type"] == "api_error"


def test_error_messages_never_carry_a_key() -> None:
    key = "sk-" + "ant-" + "api03-" + "A" * 40
    raw = json.dumps({"error": {"message": f"invalid x-api-key {key}"}}).encode()
    out = translate_error(401, raw, "anthropic", "openai")
    assert key not in out["error"]["message"]
    assert "sk-ant-api0" in out["error"]["message"]


def test_same_dialect_error_body_is_kept_unchanged() -> None:
    body = {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: required"},
    }
    assert translate_error(400, json.dumps(body).encode(), "anthropic", "anthropic") == body
