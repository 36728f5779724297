"""The fake upstreams are faithful enough for the official SDKs, talking to them directly."""

from __future__ import annotations

import anthropic
import httpx
import httpx2
import openai
import pytest

from tests.fakes import Behaviour
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI

WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
CLOCK = {
    "name": "get_time",
    "input_schema": {
        "type": "object",
        "properties": {"zone": {"type": "string"}, "h24": {"type": "boolean"}},
    },
}


def oa_tool(t: dict[str, object]) -> dict[str, object]:
    return {"type": "function", "function": {"name": t["name"], "parameters": t["input_schema"]}}


@pytest.fixture
def ant(fake_anthropic: FakeAnthropic) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake_anthropic.url, api_key="sk-ant-direct", max_retries=0)


@pytest.fixture
def oai(fake_openai: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake_openai.base_url, api_key="sk-direct", max_retries=0)


def test_anthropic_echo_usage_and_recording(
    ant: anthropic.Anthropic, fake_anthropic: FakeAnthropic
) -> None:
    msg = ant.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=64,
        messages=[{"role": "user", "content": "hello there"}],
    )
    assert msg.content[0].type == "text" and msg.content[0].text == "echo: hello there"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.cache_read_input_tokens == 128 and msg.usage.input_tokens > 0
    rec = fake_anthropic.last
    assert (rec.method, rec.path) == ("POST", "/v1/messages")
    assert rec.headers["authorization"] == "Bearer sk-ant-direct"
    assert rec.json["max_tokens"] == 64


def test_anthropic_stream_parallel_tools_and_thinking(ant: anthropic.Anthropic) -> None:
    with ant.messages.stream(
        model="claude-haiku-4-5",
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[WEATHER, CLOCK],
        messages=[{"role": "user", "content": "call tool: two tools please"}],
    ) as stream:
        final = stream.get_final_message()
    kinds = [b.type for b in final.content]
    assert kinds == ["thinking", "tool_use", "tool_use"]
    calls = [b for b in final.content if b.type == "tool_use"]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert calls[0].input == {"city": "value-city"}
    assert calls[1].input == {"zone": "value-zone", "h24": True}
    assert final.stop_reason == "tool_use"


def test_anthropic_validation_speaks_the_real_api(ant: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="top-level `system`"):
        ant.messages.create(model="m", max_tokens=5, messages=[{"role": "system", "content": "x"}])
    with pytest.raises(anthropic.BadRequestError, match="less than or equal to 1"):
        ant.messages.create(
            model="m",
            max_tokens=5,
            messages=[{"role": "user", "content": "x"}],
            extra_body={"temperature": 1.5},
        )
    with pytest.raises(anthropic.BadRequestError, match="tool_result"):
        ant.messages.create(
            model="m",
            max_tokens=5,
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "nope", "content": "1"}],
                }
            ],
        )


def test_anthropic_takes_mid_conversation_system_messages_on_models_that_do(
    ant: anthropic.Anthropic,
) -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": [{"type": "text", "text": "# Environment"}]},
    ]
    msg = ant.messages.create(model="claude-opus-5-5", max_tokens=5, messages=messages)
    assert msg.content[0].type == "text"
    with pytest.raises(anthropic.BadRequestError) as info:
        ant.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=messages)
    assert (
        info.value.body["error"]["details"]["error_code"] == "mid_conversation_system_not_supported"
    )
    with pytest.raises(anthropic.BadRequestError, match="text blocks only"):
        ant.messages.create(
            model="claude-opus-5-5",
            max_tokens=5,
            messages=[messages[0], {"role": "system", "content": [{"type": "image"}]}],
        )


def test_openai_takes_system_and_developer_messages_anywhere(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "user", "content": "x"},
            {"role": "developer", "content": "be brief"},
            {"role": "assistant", "content": "ok"},
            {"role": "system", "content": "env"},
            {"role": "user", "content": "y"},
        ],
    )
    assert reply.choices[0].message.content
    with pytest.raises(openai.BadRequestError, match="Invalid value: 'critic'"):
        oai.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "critic", "content": "x"}],
        )


def test_anthropic_requires_credentials(fake_anthropic: FakeAnthropic) -> None:
    r = httpx.post(
        fake_anthropic.url + "/v1/messages",
        headers={"anthropic-version": "2023-06-01"},
        json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
    )
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"


def test_anthropic_count_tokens_and_models(ant: anthropic.Anthropic) -> None:
    counted = ant.messages.count_tokens(model="m", messages=[{"role": "user", "content": "hi"}])
    assert counted.input_tokens > 0
    assert [m.id for m in ant.models.list()] == [
        "claude-sonnet-4-6",
        "claude-opus-4-6",
        "claude-haiku-4-5",
    ]


def test_anthropic_stop_sequence_and_max_tokens(ant: anthropic.Anthropic) -> None:
    msg = ant.messages.create(
        model="m",
        max_tokens=50,
        stop_sequences=["STOP"],
        messages=[{"role": "user", "content": "a STOP b"}],
    )
    assert (
        msg.content[0].text == "echo: a "
        and msg.stop_reason == "stop_sequence"
        and msg.stop_sequence == "STOP"
    )
    msg = ant.messages.create(
        model="m", max_tokens=2, messages=[{"role": "user", "content": "one two three"}]
    )
    assert msg.content[0].text == "echo: one " and msg.stop_reason == "max_tokens"


def test_scripted_failures_reach_the_sdk(
    ant: anthropic.Anthropic, fake_anthropic: FakeAnthropic
) -> None:
    user = [{"role": "user", "content": "x y z"}]
    fake_anthropic.script(Behaviour.status(429, headers={"retry-after": "7"}))
    with pytest.raises(anthropic.RateLimitError) as exc:
        ant.messages.create(model="m", max_tokens=5, messages=user)
    assert exc.value.response.headers["retry-after"] == "7"
    fake_anthropic.script(Behaviour.reset())
    with pytest.raises(anthropic.APIConnectionError):
        ant.messages.create(model="m", max_tokens=5, messages=user)
    fake_anthropic.script(Behaviour.stream_error("overloaded_error"))
    with (
        pytest.raises(anthropic.APIStatusError, match="overloaded_error"),
        ant.messages.stream(
            model="m",
            max_tokens=50,
            messages=user,
        ) as stream,
    ):
        stream.get_final_message()
    fake_anthropic.script(Behaviour.truncate(after_events=2))
    with (
        pytest.raises(httpx2.RemoteProtocolError),
        ant.messages.stream(model="m", max_tokens=50, messages=user) as s,
    ):
        s.get_final_message()


def test_slow_stream_notices_client_disconnect(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(Behaviour.slow_stream(0.2))
    body = {
        "model": "m",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "a b c d e"}],
    }
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    with httpx.stream("POST", fake_anthropic.url + "/v1/messages", json=body, headers=headers) as r:
        first = next(r.iter_lines())
    assert first == "event: message_start"
    assert fake_anthropic.disconnected.wait(5)
    assert fake_anthropic.disconnects == 1


def test_openai_stream_include_usage_and_parallel_tools(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "call tool in parallel"}],
            tools=[oa_tool(WEATHER), oa_tool(CLOCK)],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 64
    assert chunks[-2].choices[0].finish_reason == "tool_calls"
    with oai.chat.completions.stream(
        model="gpt-4o",
        messages=[{"role": "user", "content": "call tool in parallel"}],
        tools=[oa_tool(WEATHER), oa_tool(CLOCK)],
    ) as stream:
        calls = stream.get_final_completion().choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert calls[0].function.arguments == '{"city": "value-city"}'


def test_openai_validation_and_errors(oai: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    with pytest.raises(
        openai.BadRequestError, match="Unrecognized request argument supplied: system"
    ):
        oai.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], extra_body={"system": "s"}
        )
    with pytest.raises(openai.BadRequestError, match="preceeding message with 'tool_calls'"):
        oai.chat.completions.create(
            model="m", messages=[{"role": "tool", "tool_call_id": "c", "content": "1"}]
        )
    fake_openai.script(Behaviour.status(429))
    with pytest.raises(openai.RateLimitError, match="Rate limit"):
        oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert [m.id for m in oai.models.list()] == ["gpt-4o", "gpt-4o-mini", "gpt-4.1"]


def test_openai_requires_bearer_unless_told_not_to(fake_openai: FakeOpenAI) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    assert httpx.post(fake_openai.base_url + "/chat/completions", json=body).status_code == 401
    fake_openai.require_auth = False
    r = httpx.post(fake_openai.base_url + "/chat/completions", json=body)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "echo: x"


def test_non_stream_truncate_and_malformed_bodies(
    oai: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    user = [{"role": "user", "content": "x"}]
    fake_openai.script(Behaviour.truncate())
    with pytest.raises(openai.APIConnectionError):
        oai.chat.completions.create(model="m", messages=user)
    fake_openai.script(Behaviour.malformed_sse())
    with pytest.raises(ValueError):
        oai.chat.completions.create(model="m", messages=user)
    assert (
        oai.chat.completions.create(model="m", messages=user).choices[0].message.content
        == "echo: x"
    )
