"""Anthropic Messages request -> OpenAI Chat Completions request."""

from __future__ import annotations

from typing import Any

import pytest

from driftgate.proxy.errors import InvalidRequest
from driftgate.proxy.translate import translate_request


def a2o(body: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    t = translate_request(
        {"model": "claude-x", "max_tokens": 100, **body},
        "anthropic",
        "openai",
        model="gpt-4o",
        stream=body.get("stream") is True,
    )
    return t.body, t.dropped


def test_system_string_and_simple_message() -> None:
    body, dropped = a2o({"system": "Be brief.", "messages": [{"role": "user", "content": "Hi"}]})
    assert body == {
        "model": "gpt-4o",
        "max_tokens": 100,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    }
    assert dropped == ()


def test_system_blocks_with_cache_control_are_kept_as_text_and_cache_control_reported() -> None:
    system = [
        {"type": "text", "text": "A"},
        {"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}},
    ]
    body, dropped = a2o({"system": system, "messages": [{"role": "user", "content": "Hi"}]})
    assert body["messages"][0] == {
        "role": "system",
        "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
    }
    assert dropped == ("cache_control",)


def test_images_base64_and_url() -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
    ]
    body, _ = a2o({"messages": [{"role": "user", "content": content}]})
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
    ]


def test_tools_tool_choice_and_parallel() -> None:
    tools = [
        {
            "name": "get_weather",
            "description": "Weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"type": "web_search_20250305", "name": "web_search"},
    ]
    choice = {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}
    body, dropped = a2o(
        {"tools": tools, "tool_choice": choice, "messages": [{"role": "user", "content": "x"}]}
    )
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    assert dropped == ("tools.web_search_20250305",)


@pytest.mark.parametrize(
    ("anthropic", "openai"), [("auto", "auto"), ("any", "required"), ("none", "none")]
)
def test_tool_choice_kinds(anthropic: str, openai: str) -> None:
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    body, _ = a2o(
        {
            "tools": tools,
            "tool_choice": {"type": anthropic},
            "messages": [{"role": "user", "content": "x"}],
        }
    )
    assert body["tool_choice"] == openai
    assert "parallel_tool_calls" not in body


def test_tool_use_and_several_tool_results_in_one_turn() -> None:
    messages = [
        {"role": "user", "content": "Weather and time in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "12:00"}, {"type": "text", "text": "CET"}],
                },
                {"type": "text", "text": "Thanks"},
            ],
        },
    ]
    body, dropped = a2o({"messages": messages})
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "time", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {
            "role": "tool",
            "tool_call_id": "toolu_2",
            "content": [{"type": "text", "text": "12:00"}, {"type": "text", "text": "CET"}],
        },
        {"role": "user", "content": "Thanks"},
    ]
    assert dropped == ()


def test_tool_result_error_flag_and_image_are_reported() -> None:
    result = {
        "type": "tool_result",
        "tool_use_id": "t",
        "is_error": True,
        "content": [
            {"type": "text", "text": "boom"},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": "AA"},
            },
        ],
    }
    body, dropped = a2o({"messages": [{"role": "user", "content": [result]}]})
    assert body["messages"] == [{"role": "tool", "tool_call_id": "t", "content": "boom"}]
    assert set(dropped) == {"tool_result.image", "tool_result.is_error"}


@pytest.mark.parametrize(
    ("budget", "effort"), [(1024, "low"), (4096, "medium"), (10000, "medium"), (16384, "high")]
)
def test_thinking_budget_becomes_reasoning_effort(budget: int, effort: str) -> None:
    body, _ = a2o(
        {
            "thinking": {"type": "enabled", "budget_tokens": budget},
            "messages": [{"role": "user", "content": "x"}],
        }
    )
    assert body["reasoning_effort"] == effort
    assert body["max_completion_tokens"] == 100 and "max_tokens" not in body


def test_adaptive_thinking_is_medium_and_assistant_thinking_blocks_dropped() -> None:
    messages = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "ok"},
            ],
        },
        {"role": "user", "content": "y"},
    ]
    body, dropped = a2o({"thinking": {"type": "adaptive"}, "messages": messages})
    assert body["reasoning_effort"] == "medium"
    assert body["messages"][1] == {"role": "assistant", "content": "ok"}
    assert dropped == ("thinking",)


def test_sampling_stop_user_stream_and_unknown_fields() -> None:
    body, dropped = a2o(
        {
            "messages": [{"role": "user", "content": "x"}],
            "temperature": 0.2,
            "top_p": 0.9,
            "top_k": 40,
            "stop_sequences": ["END"],
            "metadata": {"user_id": "u-1"},
            "stream": True,
            "service_tier": "auto",
        }
    )
    assert body["temperature"] == 0.2 and body["top_p"] == 0.9 and "top_k" not in body
    assert body["stop"] == ["END"]
    assert body["user"] == "u-1"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert set(dropped) == {"top_k", "service_tier"}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"messages": "hi"}, "messages must be an array"),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "text must be a string"),
        ({"messages": [], "tool_choice": "auto"}, "tool_choice must be an object"),
    ],
)
def test_malformed_requests_raise_invalid_request(body: dict[str, Any], needle: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        a2o(body)
    assert needle in info.value.message
    assert info.value.status == 400


HI = {"role": "user", "content": "hi"}
TEXT = {"type": "text", "text": "hi"}


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"messages": [HI, {"role": "robot", "content": "x"}]}, "messages.role.robot"),
        ({"messages": [{"role": "user", "content": [TEXT, {"type": "hologram"}]}]}, "content.hologram"),
        ({"messages": [{"role": "user", "content": [TEXT, {"type": "document", "source": {}}]}]}, "content.document"),
        ({"messages": [{"role": "user", "content": [TEXT, {"type": "image", "source": {"type": "file", "file_id": "f"}}]}]}, "image.source.file"),
        ({"messages": [{"role": "user", "content": [{**TEXT, "lang": "en"}]}]}, "text.lang"),
        ({"messages": [{**HI, "id": "m1"}]}, "messages.id"),
        ({"messages": [HI], "tool_choice": {"type": "sometimes"}}, "tool_choice.sometimes"),
        ({"messages": [HI], "thinking": {"type": "deep"}}, "thinking.deep"),
        ({"messages": [HI], "system": [{"type": "memo", "memo": "x"}]}, "system.memo"),
        ({"messages": [HI], "context_management": {"edits": []}}, "context_management"),
    ],
)  # fmt: skip
def test_unknown_roles_blocks_and_fields_are_dropped_and_named(
    body: dict[str, Any], name: str
) -> None:
    out, dropped = a2o(body)
    assert name in dropped
    assert out["messages"] == [HI]


def test_mid_conversation_system_message_stays_in_place() -> None:
    body, dropped = a2o(
        {"system": "Be brief.", "messages": [
            {"role": "user", "content": [TEXT, {"type": "text", "text": "say hi"}]},
            {"role": "system", "content": [{"type": "text", "text": "# Environment", "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": "hi"},
            {"role": "system", "content": "Be terse."},
        ]}
    )  # fmt: skip
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [TEXT, {"type": "text", "text": "say hi"}]},
        {"role": "system", "content": "# Environment"},
        {"role": "assistant", "content": "hi"},
        {"role": "system", "content": "Be terse."},
    ]
    assert dropped == ("cache_control",)


def test_adaptive_thinking_with_output_config_effort_becomes_reasoning_effort() -> None:
    body, dropped = a2o(
        {"messages": [HI], "thinking": {"type": "adaptive", "display": "omitted"},
         "output_config": {"effort": "high"}}
    )  # fmt: skip
    assert body["reasoning_effort"] == "high"
    assert dropped == ("thinking.display",)
    body, dropped = a2o({"messages": [HI], "output_config": {"effort": "low", "format": {}}})
    assert "reasoning_effort" not in body
    assert set(dropped) == {"output_config.format", "output_config.effort"}
