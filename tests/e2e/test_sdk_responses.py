"""The OpenAI SDK's Responses API through the gateway, to all three backend kinds.

"responses": an OpenAI-kind backend that serves /v1/responses (forwarded untouched);
"chat": an OpenAI-compatible backend with Chat Completions only (bridged);
"anthropic": an Anthropic backend (translated to /v1/messages).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from driftgate.proxy.responses.settings import ResponsesSettings
from tests.fakes import Behaviour
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.reply_plan import REDACTED_TRIGGER
from tests.fakes.responses_order import check_order

MODELS = {"responses": "gpt-4.1", "chat": "gpt-4o", "anthropic": "claude-sonnet-4-6"}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Apply a patch to the workspace",
    "format": {
        "type": "grammar",
        "syntax": "lark",
        "definition": 'start: "*** Begin Patch" /(.|\\n)*/',
    },
}


class Backend:
    """One backend kind behind a gateway, and a client pointed at it."""

    def __init__(self, kind: str, fake: Any, gateway: Any) -> None:
        self.kind = kind
        self.fake = fake
        self.gateway = gateway
        self.model = MODELS[kind]
        self.client = openai.OpenAI(
            base_url=gateway.url + "/v1", api_key="sk-client-openai", max_retries=0
        )

    @property
    def sent(self) -> dict[str, Any]:
        """The body the upstream received last."""
        body: dict[str, Any] = self.fake.last.json
        return body


@pytest.fixture(params=["responses", "chat", "anthropic"])
def backend(
    request: pytest.FixtureRequest, gateway_factory: Callable[..., Any]
) -> Iterator[Backend]:
    kind = request.param
    fake: Any = (
        FakeAnthropic() if kind == "anthropic" else FakeOpenAI(serves_responses=kind == "responses")
    )
    fake.start()
    try:
        yield Backend(kind, fake, gateway_factory(backends=[fake]))
    finally:
        fake.stop()


def events_of(stream: Any) -> list[dict[str, Any]]:
    return [ev.model_dump(warnings=False) for ev in stream]


def test_create_answers_in_every_backend_kind(backend: Backend) -> None:
    done = backend.client.responses.create(
        model=backend.model, input="hello there", instructions="Be brief.", max_output_tokens=200
    )
    assert done.output_text == "echo: hello there"
    assert done.status == "completed" and done.object == "response"
    assert done.id.startswith("resp_")
    assert done.usage is not None and done.usage.output_tokens > 0
    assert done.usage.input_tokens_details.cached_tokens > 0
    assert done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens
    sent = backend.sent
    if backend.kind == "anthropic":
        assert sent["system"] == "Be brief." and sent["max_tokens"] == 200
        assert backend.fake.last.path == "/v1/messages"
    elif backend.kind == "chat":
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
        assert sent["max_tokens"] == 200
        assert backend.fake.last.path == "/v1/chat/completions"
    else:
        assert sent == {"model": "gpt-4.1", "input": "hello there", "instructions": "Be brief.",
                        "max_output_tokens": 200}  # fmt: skip
        assert backend.fake.last.path == "/v1/responses"


def test_stream_follows_the_documented_event_order(backend: Backend) -> None:
    stream = backend.client.responses.create(
        model=backend.model, input="stream me please", stream=True
    )
    events = events_of(stream)
    check_order(events)
    assert events[-1]["type"] == "response.completed"
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "echo: stream me please"
    assert events[-1]["response"]["usage"]["output_tokens"] > 0


def test_stream_helper_with_streamed_function_arguments(backend: Backend) -> None:
    with backend.client.responses.stream(
        model=backend.model, input="call tool for Oslo", tools=[WEATHER]
    ) as stream:
        events = [ev.model_dump(warnings=False) for ev in stream]
        final = stream.get_final_response()
    check_order(events)
    calls = [o for o in final.output if o.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather"]
    streamed = "".join(
        e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"
    )
    assert streamed == calls[0].arguments
    import json

    assert json.loads(calls[0].arguments) == {"city": "value-city"}
    # A tool-call-only answer has no message item, and nothing closes one.
    assert not [e for e in events if e["type"].startswith("response.content_part")]


def test_custom_tool_round_trip(backend: Backend) -> None:
    done = backend.client.responses.create(
        model=backend.model,
        input="call tool to patch",
        tools=[PATCH],
        tool_choice={"type": "custom", "name": "apply_patch"},
    )
    calls = [o for o in done.output if o.type == "custom_tool_call"]
    assert len(calls) == 1 and calls[0].name == "apply_patch"
    free = calls[0].input
    assert isinstance(free, str) and free
    if backend.kind != "responses":
        sent = backend.sent
        tool = sent["tools"][0]
        schema = tool.get("input_schema") or tool["function"]["parameters"]
        assert schema["properties"] == {"input": {"type": "string"}}
        description = tool.get("description") or tool["function"]["description"]
        assert "lark grammar" in description and "Begin Patch" in description
        assert free == "value-input"
    # The next turn answers the custom call; the upstream sees it as a tool result.
    follow = backend.client.responses.create(
        model=backend.model,
        input=[
            {"role": "user", "content": "call tool to patch"},
            {
                "type": "custom_tool_call",
                "call_id": calls[0].call_id,
                "name": "apply_patch",
                "input": free,
            },
            {"type": "custom_tool_call_output", "call_id": calls[0].call_id, "output": "patched"},
        ],
        tools=[PATCH],
    )
    assert follow.output_text == "tool result: patched"


def test_custom_tool_input_streams_as_plain_text(backend: Backend) -> None:
    stream = backend.client.responses.create(
        model=backend.model, input="call tool to patch", tools=[PATCH], stream=True
    )
    events = events_of(stream)
    check_order(events)
    deltas = "".join(
        e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta"
    )
    item = next(e["item"] for e in events if e["type"] == "response.output_item.done")
    assert item["type"] == "custom_tool_call" and deltas == item["input"]
    done = next(e for e in events if e["type"] == "response.custom_tool_call_input.done")
    assert done["input"] == item["input"]


def test_unknown_hosted_tools_are_dropped_and_named(backend: Backend) -> None:
    raw = backend.client.responses.with_raw_response.create(
        model=backend.model,
        input="hello",
        tools=[WEATHER, {"type": "web_search"}],
    )
    done = raw.parse()
    assert done.output_text == "echo: hello"
    if backend.kind == "responses":
        assert "x-driftgate-dropped" not in raw.headers
        assert backend.sent["tools"][1] == {"type": "web_search"}
    else:
        assert "tools.web_search" in raw.headers["x-driftgate-dropped"].split(",")


def test_store_true_is_never_an_error_and_previous_response_id_resolves(backend: Backend) -> None:
    first = backend.client.responses.create(
        model=backend.model, input="call tool for Oslo", tools=[WEATHER], store=True
    )
    call = next(o for o in first.output if o.type == "function_call")
    second = backend.client.responses.create(
        model=backend.model,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=[WEATHER],
    )
    assert second.output_text == "tool result: sunny"
    third = backend.client.responses.create(
        model=backend.model, previous_response_id=second.id, input="and tomorrow?"
    )
    assert third.output_text == "echo: and tomorrow?"
    sent = backend.sent
    if backend.kind == "anthropic":
        roles = [m["role"] for m in sent["messages"]]
        assert roles == ["user", "assistant", "user", "assistant", "user"]
        assert sent["messages"][1]["content"][0]["type"] == "tool_use"
    elif backend.kind == "chat":
        roles = [m["role"] for m in sent["messages"]]
        assert roles == ["user", "assistant", "tool", "assistant", "user"]
    else:
        assert sent["previous_response_id"] == second.id  # the backend keeps the conversation


def test_unknown_previous_response_id_gets_the_real_apis_400(backend: Backend) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        backend.client.responses.create(
            model=backend.model, previous_response_id="resp_nope", input="hi"
        )
    err = info.value
    assert err.status_code == 400
    assert err.body == {
        "message": "Previous response with id 'resp_nope' not found.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }


def test_store_false_keeps_nothing(backend: Backend) -> None:
    first = backend.client.responses.create(model=backend.model, input="hi", store=False)
    with pytest.raises(openai.BadRequestError) as info:
        backend.client.responses.create(
            model=backend.model, previous_response_id=first.id, input="more"
        )
    assert info.value.code == "previous_response_not_found"


def test_streamed_answer_is_stored_too(backend: Backend) -> None:
    with backend.client.responses.stream(model=backend.model, input="first words") as stream:
        for _ in stream:
            pass
        first = stream.get_final_response()
    nxt = backend.client.responses.create(
        model=backend.model, previous_response_id=first.id, input="second"
    )
    assert nxt.output_text == "echo: second"
    if backend.kind == "anthropic":
        assert [m["role"] for m in backend.sent["messages"]] == ["user", "assistant", "user"]
        assert backend.sent["messages"][1]["content"] == "echo: first words"


def test_a_streamed_answer_with_store_false_keeps_nothing(backend: Backend) -> None:
    """The respond step does not read a translated stream's Response object for a turn the
    client asked not to store; the turn is still not kept (nor was it before)."""
    with backend.client.responses.stream(
        model=backend.model, input="first words", store=False
    ) as stream:
        for _ in stream:
            pass
        first = stream.get_final_response()
    assert first.output_text == "echo: first words"
    with pytest.raises(openai.BadRequestError) as info:
        backend.client.responses.create(
            model=backend.model, previous_response_id=first.id, input="more"
        )
    assert info.value.code == "previous_response_not_found"


def test_item_reference_resolves_a_stored_item(backend: Backend) -> None:
    first = backend.client.responses.create(model=backend.model, input="remember me")
    item_id = first.output[0].id
    nxt = backend.client.responses.create(
        model=backend.model,
        input=[
            {"role": "user", "content": "remember me"},
            {"type": "item_reference", "id": item_id},
            {"role": "user", "content": "again"},
        ],
    )
    assert nxt.output_text == "echo: again"
    if backend.kind == "anthropic":
        assert backend.sent["messages"][1] == {"role": "assistant", "content": "echo: remember me"}


def test_upstream_failure_mid_stream_ends_with_response_failed(backend: Backend) -> None:
    backend.fake.script(Behaviour.truncate(after_events=4))
    stream = backend.client.responses.create(
        model=backend.model, input="one two three four five six", stream=True
    )
    events = events_of(stream)
    check_order(events)
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"]["message"]
    if backend.kind != "responses":  # a failed answer is not a turn to continue from
        with pytest.raises(openai.BadRequestError):
            backend.client.responses.create(
                model=backend.model, previous_response_id=events[-1]["response"]["id"], input="x"
            )


def test_upstream_errors_reach_the_client_in_openais_shape(backend: Backend) -> None:
    backend.fake.script(Behaviour.status(403))
    with pytest.raises(openai.PermissionDeniedError) as info:
        backend.client.responses.create(model=backend.model, input="hi")
    body = info.value.body
    assert isinstance(body, dict) and body["type"] in ("invalid_request_error", "permission_error")
    expected = {"anthropic": "permission", "chat": "not allowed", "responses": "not allowed"}
    assert expected[backend.kind] in body["message"].lower()


def test_reasoning_effort_becomes_thinking_and_round_trips_over_two_turns(
    gateway_factory: Callable[..., Any], fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-client", max_retries=0)
    first = client.responses.create(
        model="claude-sonnet-4-6",
        input="call tool for Oslo",
        tools=[WEATHER],
        reasoning={"effort": "high"},
        include=["reasoning.encrypted_content"],
        store=False,
    )
    sent = fake_anthropic.last.json
    assert sent["thinking"]["type"] == "enabled" and sent["thinking"]["budget_tokens"] >= 1024
    reasoning = next(o for o in first.output if o.type == "reasoning")
    call = next(o for o in first.output if o.type == "function_call")
    assert reasoning.encrypted_content and reasoning.encrypted_content.startswith("sig-fake-")
    thought = reasoning.summary[0].text
    # Turn two: the client sends the reasoning item back with the call and its output.
    with client.responses.stream(
        model="claude-sonnet-4-6",
        input=[
            {"role": "user", "content": "call tool for Oslo"},
            reasoning.model_dump(exclude_none=True),
            call.model_dump(exclude_none=True),
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ],
        tools=[WEATHER],
        reasoning={"effort": "high"},
        store=False,
    ) as stream:
        events = [ev.model_dump(warnings=False) for ev in stream]
        final = stream.get_final_response()
    check_order(events)
    assistant = fake_anthropic.last.json["messages"][1]["content"]
    assert assistant[0] == {
        "type": "thinking",
        "thinking": thought,
        "signature": reasoning.encrypted_content,
    }
    assert assistant[1]["type"] == "tool_use"
    kinds = [o.type for o in final.output]
    assert kinds == ["reasoning", "message"]
    summary = "".join(
        e["delta"] for e in events if e["type"] == "response.reasoning_summary_text.delta"
    )
    assert summary == final.output[0].summary[0].text
    assert final.output[0].encrypted_content.startswith("sig-fake-")
    assert final.output_text == "tool result: sunny"


def test_an_empty_reasoning_item_never_becomes_a_message(
    gateway_factory: Callable[..., Any], fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-client", max_retries=0)
    client.responses.create(
        model="claude-sonnet-4-6",
        input=[
            {"role": "user", "content": "hi"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"role": "assistant", "content": [{"type": "output_text", "text": "hello"}]},
            {"role": "user", "content": "again"},
        ],
    )
    messages = fake_anthropic.last.json["messages"]
    assert messages == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "again"},
    ]


def test_passthrough_keeps_every_field_the_query_and_the_upstreams_errors(
    gateway_factory: Callable[..., Any],
) -> None:
    fake = FakeOpenAI(serves_responses=True).start()
    try:
        gw = gateway_factory(backends=[fake])
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-client", max_retries=0)
        body = {"prompt_cache_key": "k1", "service_tier": "auto", "metadata": {"a": "b"},
                "include": ["reasoning.encrypted_content"], "text": {"verbosity": "low"}}  # fmt: skip
        client.responses.create(
            model="gpt-4.1", input="hi", extra_body=body, extra_query={"x": "1 2"}
        )
        assert fake.last.path == "/v1/responses" and fake.last.query == {"x": "1 2"}
        for key, value in body.items():
            assert fake.last.json[key] == value
        # An unknown field is the upstream's to judge: its own 400 reaches the client unchanged.
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model="gpt-4.1", input="hi", extra_body={"future_field": 1})
        assert info.value.body == {"message": "Unknown parameter: 'future_field'.",
                                   "type": "invalid_request_error", "param": "future_field", "code": None}  # fmt: skip
        assert fake.last.json["future_field"] == 1
    finally:
        fake.stop()


def test_input_tokens_forwarded_or_estimated(backend: Backend) -> None:
    raw = backend.client.responses.input_tokens.with_raw_response.count(
        model=backend.model, input="count these words"
    )
    counted = raw.parse()
    assert counted.input_tokens > 0
    estimated = raw.headers.get("x-driftgate-token-estimate")
    assert (estimated is None) == (backend.kind == "responses")


def test_models_list_for_responses_clients(backend: Backend) -> None:
    ids = [m.id for m in backend.client.models.list()]
    assert ids


@pytest.mark.parametrize("kind", ["responses", "chat", "anthropic"])
def test_usage_is_recorded_for_responses_like_the_other_endpoints(
    kind: str, tmp_path: Path
) -> None:
    from driftgate.proxy.analytics import Recorder
    from driftgate.proxy.config import Config
    from driftgate.proxy.server import GatewayServer

    fake: Any = (
        FakeAnthropic() if kind == "anthropic" else FakeOpenAI(serves_responses=kind == "responses")
    )
    fake.start()
    db = tmp_path / "usage.sqlite3"
    recorder = Recorder(db)
    config = Config(home=tmp_path, path=tmp_path / "c.toml", port=0, backends=(fake.backend(),))
    try:
        with GatewayServer(config, recorder=recorder, env={}) as gw:
            client = openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0)
            client.responses.create(model=MODELS[kind], input="count me")
            list(client.responses.create(model=MODELS[kind], input="count me too", stream=True))
        recorder.flush()
    finally:
        fake.stop()
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT endpoint, client_dialect, upstream_dialect, stream, status, input_tokens,"
            " output_tokens, cache_read_tokens FROM usage ORDER BY id"
        ).fetchall()
    recorder.close()
    upstream = {"responses": "responses", "chat": "openai", "anthropic": "anthropic"}[kind]
    assert [r[:5] for r in rows] == [
        ("responses", "responses", upstream, 0, 200),
        ("responses", "responses", upstream, 1, 200),
    ]
    assert all(r[5] > 0 and r[6] > 0 and r[7] > 0 for r in rows), rows


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_redacted_thinking_round_trips_over_two_turns(
    gateway_factory: Callable[..., Any], fake_anthropic: FakeAnthropic, stream: bool
) -> None:
    """A redacted_thinking block becomes a reasoning item holding its data in encrypted_content,
    and that item goes back to Anthropic as the same redacted_thinking block."""
    gw = gateway_factory(backends=[fake_anthropic])
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-client", max_retries=0)
    ask = {"model": "claude-sonnet-4-6", "reasoning": {"effort": "high"}}
    if stream:
        with client.responses.stream(input=REDACTED_TRIGGER, **ask) as live:
            events = events_of(live)
            first = live.get_final_response()
        check_order(events)
    else:
        first = client.responses.create(input=REDACTED_TRIGGER, **ask)
    reasoning = next(o for o in first.output if o.type == "reasoning")
    assert reasoning.summary == []  # nothing readable in it
    assert reasoning.encrypted_content and reasoning.encrypted_content.startswith(
        "redacted_thinking:"
    )
    data = reasoning.encrypted_content.removeprefix("redacted_thinking:")
    assert data.startswith("RWR") and first.output_text.startswith("echo: ")
    # Turn two, by previous_response_id (the gateway's store) ...
    client.responses.create(previous_response_id=first.id, input="and now?", **ask)
    sent = fake_anthropic.last.json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"][0] == {"type": "redacted_thinking", "data": data}
    # ... and with the items sent back by the client (store off).
    items = [o.model_dump(exclude_none=True) for o in first.output]
    client.responses.create(
        input=[{"role": "user", "content": REDACTED_TRIGGER}, *items,
               {"role": "user", "content": "and now?"}],
        store=False, **ask,
    )  # fmt: skip
    assert fake_anthropic.last.json["messages"][1]["content"][0] == {
        "type": "redacted_thinking",
        "data": data,
    }


def test_redacted_thinking_is_dropped_and_named_for_chat_clients(
    gateway_factory: Callable[..., Any], fake_anthropic: FakeAnthropic
) -> None:
    """Chat Completions has no field for opaque reasoning: left out, named in x-driftgate-dropped."""
    gw = gateway_factory(backends=[fake_anthropic])
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-client", max_retries=0)
    ask: dict[str, Any] = {
        "model": "claude-sonnet-4-6",
        "messages": [{"role": "user", "content": REDACTED_TRIGGER}],
        "reasoning_effort": "high",
    }
    raw = client.chat.completions.with_raw_response.create(**ask)
    assert "redacted_thinking" in raw.headers["x-driftgate-dropped"].split(",")
    assert fake_anthropic.last.json["thinking"]["type"] == "enabled"
    assert raw.parse().choices[0].message.content.startswith("echo: ")
    chunks = list(client.chat.completions.create(stream=True, **ask))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("echo: ")


class WallClock:
    """The gateway's wall clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_stores_ttl_and_cap_come_from_config_and_answer_the_real_apis_400(
    gateway_factory: Callable[..., Any], fake_anthropic: FakeAnthropic
) -> None:
    clock = WallClock()
    gw = gateway_factory(
        backends=[fake_anthropic],
        responses=ResponsesSettings(store_ttl_seconds=60, store_max_items=2),
        app_kwargs={"wall": clock},
    )
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-client", max_retries=0)

    def create(**kwargs: Any) -> Any:
        return client.responses.create(model="claude-sonnet-4-6", **kwargs)

    def unknown(response_id: str) -> bool:
        try:
            create(previous_response_id=response_id, input="more", store=False)
        except openai.BadRequestError as exc:
            assert exc.status_code == 400 and exc.code == "previous_response_not_found"
            assert exc.body == {
                "message": f"Previous response with id '{response_id}' not found.",
                "type": "invalid_request_error",
                "param": "previous_response_id",
                "code": "previous_response_not_found",
            }
            return True
        return False

    first = create(input="one")
    clock.now += 59
    assert not unknown(first.id)
    clock.now += 2  # past store_ttl_seconds
    assert unknown(first.id)
    ids = [create(input=f"turn {n}").id for n in range(3)]  # store_max_items = 2
    assert [unknown(i) for i in ids] == [True, False, False]  # the oldest went first
