"""Cross dialect: the Anthropic SDK as client, an OpenAI Chat Completions upstream as backend."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from tests.fakes import Behaviour
from tests.fakes.openai_upstream import FakeOpenAI

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
CLOCK = {
    "name": "get_time",
    "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}},
}


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if p.get("type") == "text")


def test_system_multipart_and_images(
    anthropic_client: anthropic.Anthropic, fake_openai: FakeOpenAI
) -> None:
    msg = anthropic_client.messages.create(
        model="gpt-4o",
        max_tokens=300,
        system=[{"type": "text", "text": "Be brief."}],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is in "},
                    {"type": "text", "text": "these pictures"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/cat.jpg"},
                    },
                ],
            }
        ],
    )
    assert (
        msg.content[0].type == "text" and msg.content[0].text == "echo: what is in these pictures"
    )
    assert msg.model == "gpt-4o" and msg.role == "assistant"
    sent = fake_openai.last.json
    assert sent["model"] == "gpt-4o"
    assert (
        sent["messages"][0]["role"] == "system"
        and text_of(sent["messages"][0]["content"]) == "Be brief."
    )
    parts = sent["messages"][1]["content"]
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert urls == [f"data:image/png;base64,{PNG}", "https://example.com/cat.jpg"]
    assert text_of(parts) == "what is in these pictures"
    assert sent.get("max_tokens", sent.get("max_completion_tokens")) == 300


def test_tools_and_tool_choice_are_translated(
    anthropic_client: anthropic.Anthropic, fake_openai: FakeOpenAI
) -> None:
    msg = anthropic_client.messages.create(
        model="gpt-4o",
        max_tokens=300,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "call tool for Paris"}],
    )
    sent = fake_openai.last.json
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": WEATHER["input_schema"],
            },
        }
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert msg.stop_reason == "tool_use"
    call = msg.content[-1]
    assert (
        call.type == "tool_use"
        and call.name == "get_weather"
        and call.input == {"city": "value-city"}
    )
    assert call.id  # the SDK needs an id to answer with a tool_result
    anthropic_client.messages.create(
        model="gpt-4o",
        max_tokens=300,
        tools=[WEATHER],
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "hi"}],
    )
    assert fake_openai.last.json["tool_choice"] == "required"


def test_streamed_parallel_tool_calls_reassemble_in_the_sdk(
    anthropic_client: anthropic.Anthropic,
) -> None:
    with anthropic_client.messages.stream(
        model="gpt-4o",
        max_tokens=300,
        tools=[WEATHER, CLOCK],
        messages=[{"role": "user", "content": "call tool: two tools at once"}],
    ) as stream:
        final = stream.get_final_message()
    calls = [b for b in final.content if b.type == "tool_use"]
    assert [(c.name, c.input) for c in calls] == [
        ("get_weather", {"city": "value-city"}),
        ("get_time", {"zone": "value-zone"}),
    ]
    assert len({c.id for c in calls}) == 2
    assert final.stop_reason == "tool_use"


def test_tool_results_in_the_next_turn(
    anthropic_client: anthropic.Anthropic, fake_openai: FakeOpenAI
) -> None:
    first = anthropic_client.messages.create(
        model="gpt-4o",
        max_tokens=300,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "call tool please"}],
    )
    call = next(b for b in first.content if b.type == "tool_use")
    second = anthropic_client.messages.create(
        model="gpt-4o",
        max_tokens=300,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "call tool please"},
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in first.content],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 21C"}
                ],
            },
        ],
    )
    assert second.content[0].text == "tool result: sunny, 21C"
    assert second.stop_reason == "end_turn"
    sent = fake_openai.last.json["messages"]
    assistant = next(m for m in sent if m["role"] == "assistant")
    assert assistant["tool_calls"][0]["id"] == call.id
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "value-city"}
    tool = next(m for m in sent if m["role"] == "tool")
    assert tool["tool_call_id"] == call.id and text_of(tool["content"]) == "sunny, 21C"


def test_stop_sequences_max_tokens_and_stop_reasons(
    anthropic_client: anthropic.Anthropic, fake_openai: FakeOpenAI
) -> None:
    msg = anthropic_client.messages.create(
        model="gpt-4o",
        max_tokens=300,
        stop_sequences=["HALT"],
        messages=[{"role": "user", "content": "go on HALT never seen"}],
    )
    assert fake_openai.last.json["stop"] == ["HALT"]
    assert msg.content[0].text == "echo: go on "
    assert msg.stop_reason in ("end_turn", "stop_sequence")
    msg = anthropic_client.messages.create(
        model="gpt-4o",
        max_tokens=3,
        messages=[{"role": "user", "content": "one two three four five"}],
    )
    assert msg.stop_reason == "max_tokens"
    assert msg.content[0].text == "echo: one two "


def test_usage_maps_cached_tokens(
    anthropic_client: anthropic.Anthropic, fake_openai: FakeOpenAI
) -> None:
    msg = anthropic_client.messages.create(
        model="gpt-4o", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    )
    assert msg.usage.cache_read_input_tokens == fake_openai.cached_tokens == 64
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens == 2
    with anthropic_client.messages.stream(
        model="gpt-4o", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.usage.cache_read_input_tokens == 64 and final.usage.output_tokens == 2
    assert fake_openai.last.json.get("stream_options") == {"include_usage": True}


HISTORY_WITH_THINKING = [
    {"role": "user", "content": "hi"},
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "yo"},
        ],
    },
    {"role": "user", "content": "think again"},
]


def test_thinking_and_top_k_are_dropped_and_reported(
    anthropic_client: anthropic.Anthropic, fake_openai: FakeOpenAI
) -> None:
    raw = anthropic_client.messages.with_raw_response.create(
        model="gpt-5.1",
        max_tokens=3000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=HISTORY_WITH_THINKING,
        extra_body={"top_k": 5, "temperature": 0.4, "top_p": 0.9},
    )
    dropped = raw.headers["x-driftgate-dropped"].split(",")
    assert "thinking" in dropped and "top_k" in dropped
    sent = fake_openai.last.json
    assert "thinking" not in sent and "top_k" not in sent
    assert sent["messages"][1] == {
        "role": "assistant",
        "content": "yo",
    }  # the thinking block is gone
    assert sent["reasoning_effort"] in (
        "minimal",
        "low",
        "medium",
        "high",
    )  # a reasoning model reasons
    assert sent["temperature"] == 0.4 and sent["top_p"] == 0.9
    assert raw.parse().content[0].text == "echo: think again"


@pytest.mark.parametrize("convert", [False, True])
def test_thinking_on_a_non_reasoning_model_is_dropped_and_reported(
    gateway_factory: Any, fake_openai: FakeOpenAI, convert: bool
) -> None:
    # Claude Code sends `thinking` by default; the client never wrote `reasoning_effort`, so a
    # model without reasoning answers without it instead of a 400 about a field nobody sent.
    gw = gateway_factory(
        backends=[fake_openai.backend(models=["gpt-*"])], convert_unsupported=convert
    )
    client = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0)
    raw = client.messages.with_raw_response.create(
        model="gpt-4o",
        max_tokens=3000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "think"}],
    )
    assert raw.http_response.status_code == 200
    assert "thinking" in raw.headers["x-driftgate-dropped"].split(",")
    assert "x-driftgate-converted" not in raw.headers
    sent = fake_openai.last.json
    assert "reasoning_effort" not in sent
    assert sent["max_tokens"] == 3000 and "max_completion_tokens" not in sent
    assert raw.parse().content[0].text == "echo: think"


def test_thinking_on_a_non_reasoning_model_streams_with_the_drop_reported(
    anthropic_client: anthropic.Anthropic, fake_openai: FakeOpenAI
) -> None:
    with anthropic_client.messages.stream(
        model="gpt-4o",
        max_tokens=3000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "think"}],
    ) as stream:
        dropped = stream.response.headers["x-driftgate-dropped"].split(",")
        final = stream.get_final_message()
    assert "thinking" in dropped
    assert "reasoning_effort" not in fake_openai.last.json
    assert final.content[0].type == "text" and final.content[0].text == "echo: think"


def test_metadata_user_id_becomes_user(
    anthropic_client: anthropic.Anthropic, fake_openai: FakeOpenAI
) -> None:
    anthropic_client.messages.create(
        model="gpt-4o",
        max_tokens=20,
        metadata={"user_id": "user-42"},
        messages=[{"role": "user", "content": "x"}],
    )
    sent = fake_openai.last.json
    assert "metadata" not in sent or "user_id" not in sent["metadata"]
    assert sent.get("user", sent.get("safety_identifier")) == "user-42"


def test_upstream_errors_become_anthropic_errors(
    anthropic_client: anthropic.Anthropic, fake_openai: FakeOpenAI
) -> None:
    user = [{"role": "user", "content": "x"}]
    fake_openai.script(Behaviour.status(429, headers={"retry-after": "3"}))
    with pytest.raises(anthropic.RateLimitError) as rate:
        anthropic_client.messages.create(model="gpt-4o", max_tokens=5, messages=user)
    assert rate.value.body["error"]["type"] == "rate_limit_error"
    assert "Rate limit reached" in rate.value.body["error"]["message"]
    assert rate.value.response.headers["retry-after"] == "3"  # the SDK's retry logic reads it
    body = {
        "error": {
            "message": "the upstream said no",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    fake_openai.script(Behaviour.status(400, body=body))
    with pytest.raises(anthropic.BadRequestError) as bad:
        anthropic_client.messages.create(model="gpt-4o", max_tokens=5, messages=user)
    assert bad.value.body["type"] == "error"
    assert "the upstream said no" in bad.value.body["error"]["message"]
    fake_openai.script(Behaviour.status(500))
    with pytest.raises(anthropic.InternalServerError):
        anthropic_client.messages.create(model="gpt-4o", max_tokens=5, messages=user)


def test_a_model_unknown_to_the_templates_that_refuses_reasoning_is_answered_without_it(
    gateway_factory: Any, fake_openai: FakeOpenAI
) -> None:
    # Groq-style: a model the templates do not know rejects the reasoning_effort that the
    # gateway wrote for the client's `thinking`; the gateway retries once without it, and
    # remembers, so the next request to that model goes without it from the start.
    gw = gateway_factory(backends=[fake_openai.backend("groq", models=["llama-*"])])
    client = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0)
    refusal = {
        "error": {
            "message": "`reasoning_effort` is not supported with this model",
            "type": "invalid_request_error",
            "param": "reasoning_effort",
            "code": None,
        }
    }
    fake_openai.script(Behaviour.status(400, body=refusal))
    ask: dict[str, Any] = {
        "model": "llama-3.3-70b",
        "max_tokens": 3000,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "think"}],
    }
    first = client.messages.with_raw_response.create(**ask)
    second = client.messages.with_raw_response.create(**ask)
    sent = [r.json for r in fake_openai.requests]
    assert ["reasoning_effort" in s for s in sent] == [True, False, False]
    assert sent[1]["max_tokens"] == 3000 and "max_completion_tokens" not in sent[1]
    for raw in (first, second):
        assert raw.parse().content[0].text == "echo: think"
        assert "thinking" in raw.headers["x-driftgate-dropped"].split(",")
    # a 400 about something else is the client's answer, not retried
    fake_openai.script(Behaviour.status(400, body={"error": {"message": "bad 'messages'"}}))
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(**ask)
    assert len(fake_openai.requests) == 4
