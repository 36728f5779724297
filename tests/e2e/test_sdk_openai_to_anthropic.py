"""Cross dialect: the OpenAI SDK as client, an Anthropic Messages upstream as backend."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.fakes import Behaviour
from tests.fakes.anthropic_upstream import FakeAnthropic

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
MODEL = "claude-sonnet-4-6"


def fn(name: str, props: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    f: dict[str, Any] = {"name": name, "parameters": {"type": "object", "properties": props}}
    if description:
        f["description"] = description
    return {"type": "function", "function": f}


WEATHER = fn("get_weather", {"city": {"type": "string"}}, "Current weather for a city")
CLOCK = fn("get_time", {"zone": {"type": "string"}})


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if b.get("type") == "text")


def test_system_multipart_and_images(
    openai_client: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    done = openai_client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe "},
                    {"type": "text", "text": "both"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            },
        ],
    )
    assert done.choices[0].message.content == "echo: describe both"
    assert done.choices[0].finish_reason == "stop" and done.object == "chat.completion"
    sent = fake_anthropic.last.json
    assert text_of(sent["system"]) == "Be brief."
    assert [m["role"] for m in sent["messages"]] == ["user"]
    blocks = sent["messages"][0]["content"]
    sources = [b["source"] for b in blocks if b["type"] == "image"]
    assert sources == [
        {"type": "base64", "media_type": "image/png", "data": PNG},
        {"type": "url", "url": "https://example.com/cat.jpg"},
    ]
    assert isinstance(sent["max_tokens"], int) and sent["max_tokens"] > 0  # required upstream
    assert fake_anthropic.last.headers["anthropic-version"]


def test_tools_tool_choice_and_parallel_flag(
    openai_client: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    done = openai_client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "call tool for Oslo"}],
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
    )
    sent = fake_anthropic.last.json
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": WEATHER["function"]["parameters"],
        }
    ]
    assert sent["tool_choice"] == {
        "type": "tool",
        "name": "get_weather",
        "disable_parallel_tool_use": True,
    }
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert len(calls) == 1 and calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"city": "value-city"}
    openai_client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "x"}],
        tools=[WEATHER],
        tool_choice="required",
    )
    assert fake_anthropic.last.json["tool_choice"]["type"] == "any"


def test_streamed_parallel_tool_calls_reassemble_in_the_sdk(openai_client: openai.OpenAI) -> None:
    with openai_client.chat.completions.stream(
        model=MODEL,
        messages=[{"role": "user", "content": "call tool: two tools at once"}],
        tools=[WEATHER, CLOCK],
    ) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "value-city"}),
        ("get_time", {"zone": "value-zone"}),
    ]
    assert len({c.id for c in calls}) == 2


def test_tool_results_in_the_next_turn(
    openai_client: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    first = openai_client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "call tool: two tools"}],
        tools=[WEATHER, CLOCK],
    )
    calls = first.choices[0].message.tool_calls or []
    assert len(calls) == 2
    history: list[Any] = [
        {"role": "user", "content": "call tool: two tools"},
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny"},
        {"role": "tool", "tool_call_id": calls[1].id, "content": "noon"},
    ]
    second = openai_client.chat.completions.create(
        model=MODEL, messages=history, tools=[WEATHER, CLOCK]
    )
    assert second.choices[0].message.content == "tool result: sunny | noon"
    assert second.choices[0].finish_reason == "stop"
    sent = fake_anthropic.last.json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    uses = [b for b in sent[1]["content"] if b["type"] == "tool_use"]
    assert [u["id"] for u in uses] == [c.id for c in calls]
    results = [b for b in sent[2]["content"] if b["type"] == "tool_result"]
    assert [(r["tool_use_id"], text_of(r["content"])) for r in results] == [
        (calls[0].id, "sunny"),
        (calls[1].id, "noon"),
    ]


def test_stop_max_tokens_sampling_and_user(
    openai_client: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    done = openai_client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "say it END and more"}],
        stop=["END"],
        temperature=0.3,
        top_p=0.8,
        user="user-7",
        max_completion_tokens=200,
    )
    sent = fake_anthropic.last.json
    assert sent["stop_sequences"] == ["END"] and sent["max_tokens"] == 200
    assert sent["temperature"] == 0.3 and sent["top_p"] == 0.8
    assert sent["metadata"] == {"user_id": "user-7"}
    assert (
        done.choices[0].message.content == "echo: say it "
        and done.choices[0].finish_reason == "stop"
    )
    done = openai_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "a b c d e f"}], max_tokens=2
    )
    assert done.choices[0].finish_reason == "length"
    assert fake_anthropic.last.json["max_tokens"] == 2


def test_usage_counts_cache_tokens_in_prompt_tokens(
    openai_client: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    done = openai_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    usage = done.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == fake_anthropic.cache_read_tokens
    assert (
        usage.prompt_tokens
        > fake_anthropic.cache_read_tokens + fake_anthropic.cache_creation_tokens
    )
    assert usage.completion_tokens == 2 and usage.total_tokens == usage.prompt_tokens + 2
    chunks = list(
        openai_client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hi"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens == usage.prompt_tokens and last.usage.completion_tokens == 2


def test_thinking_from_the_upstream_is_not_leaked_as_text(
    openai_client: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    raw = openai_client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "ponder"}], reasoning_effort="low"
    )
    sent = fake_anthropic.last.json
    assert sent["thinking"]["type"] in ("enabled", "adaptive")
    assert raw.parse().choices[0].message.content == "echo: ponder"
    # the answer's thinking block has no Chat Completions field: left out, and said so
    assert "thinking" in raw.headers["x-driftgate-dropped"].split(",")


def test_upstream_errors_become_openai_errors(
    openai_client: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    user = [{"role": "user", "content": "x"}]
    fake_anthropic.script(Behaviour.status(429, headers={"retry-after": "4"}))
    with pytest.raises(openai.RateLimitError) as rate:
        openai_client.chat.completions.create(model=MODEL, messages=user)
    assert "per-minute rate limit" in rate.value.message
    body = {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "upstream refused this"},
    }
    fake_anthropic.script(Behaviour.status(400, body=body))
    with pytest.raises(openai.BadRequestError) as bad:
        openai_client.chat.completions.create(model=MODEL, messages=user)
    assert "upstream refused this" in bad.value.message
    assert isinstance(bad.value.body, dict) and "message" in bad.value.body
    fake_anthropic.script(Behaviour.status(529))
    with pytest.raises(openai.APIStatusError) as overloaded:
        openai_client.chat.completions.create(model=MODEL, messages=user)
    assert overloaded.value.status_code >= 500
