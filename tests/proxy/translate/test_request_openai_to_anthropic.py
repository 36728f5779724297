"""OpenAI Chat Completions request -> Anthropic Messages request."""

from __future__ import annotations

from typing import Any

import pytest

from driftgate.proxy.errors import InvalidRequest
from driftgate.proxy.translate import translate_request
from driftgate.proxy.translate.anthropic_render import DEFAULT_MAX_TOKENS


def o2a(body: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    t = translate_request(
        {"model": "gpt-x", **body},
        "openai",
        "anthropic",
        model="claude-sonnet-4-5",
        stream=body.get("stream") is True,
    )
    return t.body, t.dropped


def test_system_and_developer_messages_become_system() -> None:
    body, dropped = o2a(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
                {"role": "user", "content": "Hi"},
            ]
        }
    )
    assert body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use French."}],
        "messages": [{"role": "user", "content": "Hi"}],
    }
    assert dropped == ()


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_either_name(field: str) -> None:
    body, _ = o2a({field: 321, "messages": [{"role": "user", "content": "x"}]})
    assert body["max_tokens"] == 321


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_a_token_count_of_the_wrong_type_is_refused_by_the_name_the_client_sent(field: str) -> None:
    with pytest.raises(InvalidRequest, match=f"^{field} must be an integer"):
        o2a({field: "64", "messages": [{"role": "user", "content": "x"}]})


def test_images_data_url_and_http_url() -> None:
    content = [
        {"type": "text", "text": "Look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/x.jpg", "detail": "high"}},
    ]
    body, dropped = o2a({"messages": [{"role": "user", "content": content}]})
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "Look"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/x.jpg"}},
    ]
    assert dropped == ("image_url.detail",)


def test_tool_calls_and_tool_messages_become_one_user_turn() -> None:
    messages = [
        {"role": "user", "content": "Weather and time?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                },
                {"id": "call_2", "type": "function", "function": {"name": "time", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "3C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "09:00"}]},
        {"role": "user", "content": "And tomorrow?"},
    ]
    body, _ = o2a({"messages": messages})
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "call_2", "name": "time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "3C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "09:00"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]


def test_tool_call_ids_are_made_acceptable_to_anthropic() -> None:
    messages = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "functions.f:0",
                    "type": "function",
                    "function": {"name": "f", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "functions.f:0", "content": "ok"},
    ]
    body, _ = o2a({"messages": messages})
    assert body["messages"][1]["content"][0]["id"] == "functions_f_0"
    assert body["messages"][2]["content"][0]["tool_use_id"] == "functions_f_0"


def test_invalid_tool_arguments_are_rejected_clearly() -> None:
    messages = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
            ],
        },
    ]
    with pytest.raises(InvalidRequest, match="JSON object"):
        o2a({"messages": messages})


def test_tools_choice_parallel_and_strict() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "f",
                "description": "F",
                "parameters": {"type": "object"},
                "strict": True,
            },
        },
        {"type": "function", "function": {"name": "g"}},
    ]
    body, dropped = o2a(
        {
            "tools": tools,
            "tool_choice": "required",
            "parallel_tool_calls": False,
            "messages": [{"role": "user", "content": "x"}],
        }
    )
    assert body["tools"] == [
        {"name": "f", "description": "F", "input_schema": {"type": "object"}},
        {"name": "g", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert dropped == ("tools.function.strict",)


def test_parallel_false_without_choice_sets_auto_with_disable() -> None:
    body, _ = o2a(
        {"tools": [{"type": "function", "function": {"name": "f"}}], "parallel_tool_calls": False,
         "messages": [{"role": "user", "content": "x"}]}
    )  # fmt: skip
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_named_tool_choice() -> None:
    body, _ = o2a(
        {"tools": [{"type": "function", "function": {"name": "f"}}],
         "tool_choice": {"type": "function", "function": {"name": "f"}},
         "messages": [{"role": "user", "content": "x"}]}
    )  # fmt: skip
    assert body["tool_choice"] == {"type": "tool", "name": "f"}


@pytest.mark.parametrize(("effort", "budget"), [("low", 2048), ("medium", 8192), ("high", 24576)])
def test_reasoning_effort_becomes_thinking_budget(effort: str, budget: int) -> None:
    body, dropped = o2a(
        {
            "reasoning_effort": effort,
            "temperature": 0.3,
            "messages": [{"role": "user", "content": "x"}],
        }
    )
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS + budget  # room for thinking and the answer
    assert "temperature" not in body and dropped == ("temperature",)


def test_reasoning_budget_is_clipped_below_max_tokens_or_dropped() -> None:
    body, _ = o2a(
        {
            "reasoning_effort": "high",
            "max_completion_tokens": 5000,
            "messages": [{"role": "user", "content": "x"}],
        }
    )
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 4999}
    body, dropped = o2a(
        {
            "reasoning_effort": "low",
            "max_tokens": 500,
            "messages": [{"role": "user", "content": "x"}],
        }
    )
    assert "thinking" not in body and dropped == ("reasoning_effort",)


def test_stop_user_stream_sampling_and_unknown_fields() -> None:
    body, dropped = o2a(
        {
            "messages": [{"role": "user", "content": "x"}],
            "stop": "END",
            "user": "u-9",
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 0.5,
            "top_p": 0.8,
            "seed": 7,
            "presence_penalty": 0.1,
            "n": 1,
        }
    )
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "u-9"}
    assert body["stream"] is True and "stream_options" not in body
    assert body["temperature"] == 0.5 and body["top_p"] == 0.8
    assert set(dropped) == {"seed", "presence_penalty"}


def test_assistant_refusal_and_empty_tool_content() -> None:
    body, _ = o2a(
        {"messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": None, "refusal": "I can't help with that."},
            {"role": "user", "content": "ok"},
        ]}
    )  # fmt: skip
    assert body["messages"][1] == {"role": "assistant", "content": "I can't help with that."}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"n": 2, "messages": []}, "n > 1"),
        ({"messages": {"role": "user"}}, "messages must be an array"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
        ({"messages": [], "tool_choice": 3}, "tool_choice"),
        ({"messages": [], "max_tokens": "many"}, "integer"),
    ],
)
def test_malformed_requests_raise_invalid_request(body: dict[str, Any], needle: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        o2a(body)
    assert needle in info.value.message


HI = {"role": "user", "content": "hi"}


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"messages": [HI, {"role": "function", "name": "f", "content": "x"}]}, "messages.role.function"),
        ({"messages": [HI, {"role": "critic", "content": "x"}]}, "messages.role.critic"),
        (
            {"messages": [{"role": "user", "content": [
                {"type": "text", "text": "hi"}, {"type": "input_audio", "input_audio": {}}]}]},
            "content.input_audio",
        ),
        (
            {"messages": [{"role": "user", "content": [
                {"type": "text", "text": "hi"},
                {"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}]},
            "image_url.data",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "lang": "en"}]}]}, "text.lang"),
        ({"messages": [{**HI, "weight": 2}]}, "messages.weight"),
        ({"messages": [HI], "reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"messages": [HI], "tool_choice": "sometimes"}, "tool_choice.sometimes"),
        ({"messages": [HI], "tool_choice": {"type": "custom", "custom": {"name": "x"}}}, "tool_choice.custom"),
        ({"messages": [HI], "frobnicate": True}, "frobnicate"),
    ],
)  # fmt: skip
def test_unknown_roles_parts_and_fields_are_dropped_and_named(
    body: dict[str, Any], name: str
) -> None:
    out, dropped = o2a(body)
    assert name in dropped
    assert out["messages"] == [HI]


def test_a_message_whose_every_part_was_dropped_is_left_out() -> None:
    body, dropped = o2a(
        {"messages": [HI, {"role": "assistant", "content": "ok"},
                      {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}
    )  # fmt: skip
    assert body["messages"] == [HI, {"role": "assistant", "content": "ok"}]
    assert dropped == ("content.input_audio",)


def test_mid_conversation_system_and_developer_messages_keep_their_place_or_join_system() -> None:
    request = {"model": "gpt-x", "messages": [
        {"role": "developer", "content": "Be brief."},
        HI,
        {"role": "system", "content": [{"type": "text", "text": "Env: linux"}]},
        {"role": "assistant", "content": "hello"},
        {"role": "developer", "content": "Now be terse."},
        {"role": "user", "content": "more"},
    ]}  # fmt: skip
    hoisted = translate_request(request, "openai", "anthropic", model="claude-sonnet-4-5")
    assert hoisted.body["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Env: linux"},
        {"type": "text", "text": "Now be terse."},
    ]
    assert [m["role"] for m in hoisted.body["messages"]] == ["user", "assistant", "user"]
    assert hoisted.dropped == ()
    in_place = translate_request(
        request, "openai", "anthropic", model="claude-opus-5-5", mid_conversation_system=True
    )
    assert in_place.body["system"] == "Be brief."
    assert in_place.body["messages"] == [
        HI,
        {"role": "system", "content": "Env: linux"},
        {"role": "assistant", "content": "hello"},
        {"role": "system", "content": "Now be terse."},
        {"role": "user", "content": "more"},
    ]


def test_empty_assistant_content_beside_tool_calls_is_not_an_empty_text_block() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    body, _ = o2a(
        {"messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "done"},
        ]}
    )  # fmt: skip
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "c1", "name": "f", "input": {}}
    ]


def test_forced_tool_use_wins_over_reasoning() -> None:
    body, dropped = o2a(
        {"reasoning_effort": "high", "tool_choice": "required",
         "tools": [{"type": "function", "function": {"name": "f"}}],
         "messages": [{"role": "user", "content": "x"}]}
    )  # fmt: skip
    assert "thinking" not in body and body["tool_choice"] == {"type": "any"}
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS and dropped == ("reasoning_effort",)
