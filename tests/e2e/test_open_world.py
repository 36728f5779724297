"""Open-world requests through a running gateway: unknown roles, block types and fields.

Hypothesis builds valid conversations in each dialect and salts them with roles, content types
and fields no dialect defines. Whatever it builds, the gateway itself never refuses: same dialect,
the body reaches the fake upstream equal as JSON (the upstream, validating like the real API, is
the judge); across dialects, the fake accepts the translation and every unknown thing is named in
`x-driftgate-dropped`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftgate.proxy.config import Config
from driftgate.proxy.server import GatewayServer
from driftgate.proxy.templates import canonical_json, load_bundled
from driftgate.proxy.templates.store import TemplateStore
from driftgate.proxy.translate.input_checks import header_names
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI
from tests.proxy.translate.test_properties import conversations

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
ANTHROPIC_MODEL = "claude-sonnet-4-6"
OPENAI_MODEL = "gpt-4o"
# Every role, block/part type and field name either dialect gives a meaning to: never generated.
KNOWN = frozenset(
    {"user", "assistant", "system", "developer", "tool", "function", "model", "messages",
     "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "stop",
     "stop_sequences", "stream", "stream_options", "tools", "tool_choice", "thinking", "metadata",
     "output_config", "n", "reasoning_effort", "parallel_tool_calls", "role", "content",
     "type", "text", "image", "image_url", "source", "id", "name", "input", "tool_use",
     "tool_result", "tool_use_id", "is_error", "cache_control", "citations", "redacted_thinking",
     "signature", "data", "tool_calls", "tool_call_id", "refusal", "reasoning_content",
     "function_call", "input_audio", "audio", "file", "document", "search_result",
     "server_tool_use", "web_search_tool_result", "container_upload", "description",
     "input_schema", "parameters", "strict", "custom"}
)  # fmt: skip

unknown_name = st.text(min_size=1, max_size=12).filter(lambda s: s not in KNOWN)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=5), inner, max_size=2)
    ),
    max_leaves=4,
)
extra_fields = st.dictionaries(unknown_name, json_value, max_size=2)


@st.composite
def openai_conversations(draw: st.DrawFn) -> dict[str, Any]:
    """A valid Chat Completions request: turns, tool calls answered by tool messages."""
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append(
            {"role": draw(st.sampled_from(["system", "developer"])), "content": "Be brief."}
        )
    calls = 0
    for turn in range(draw(st.integers(1, 5))):
        if turn % 2 == 0:
            messages.append({"role": "user", "content": draw(st.text(min_size=1, max_size=20))})
            continue
        n = draw(st.integers(0, 2))
        ids = [f"call_{calls + k}" for k in range(n)]
        calls += n
        msg: dict[str, Any] = {
            "role": "assistant",
            "content": draw(st.text(min_size=1, max_size=20)),
        }
        if ids:
            msg["tool_calls"] = [
                {"id": i, "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
                for i in ids
            ]
        messages.append(msg)
        messages += [{"role": "tool", "tool_call_id": i, "content": "ok"} for i in ids]
        if draw(st.booleans()):
            messages.append({"role": "system", "content": "Mid-conversation note."})
    body: dict[str, Any] = {"model": OPENAI_MODEL, "messages": messages}
    if draw(st.booleans()):
        body["tools"] = [
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
        ]
    return body


class Salted:
    """A request with unknown things added, and the names the gateway must report dropping."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.expected: list[str] = []


@st.composite
def salted(draw: st.DrawFn, dialect: str) -> Salted:
    """A valid request of `dialect` with unknown roles, block types and fields mixed in."""
    if dialect == "anthropic":
        body = draw(conversations())
        body["model"] = ANTHROPIC_MODEL
    else:
        body = draw(openai_conversations())
    out = Salted(copy.deepcopy(body))
    messages: list[dict[str, Any]] = out.body["messages"]
    for field, value in draw(extra_fields).items():
        out.body[field] = value
        out.expected.append(field)
    for message in draw(st.lists(st.sampled_from(messages), max_size=2, unique_by=id)):
        for field, value in draw(extra_fields).items():
            message[field] = value
            out.expected.append(f"messages.{field}")
    user_turns = [m for m in messages if m["role"] == "user" and m.get("content")]
    for message in draw(
        st.lists(st.sampled_from(user_turns), max_size=2, unique_by=id)
        if user_turns
        else st.just([])
    ):
        kind = draw(unknown_name)
        content = message["content"]
        if isinstance(content, str):
            content = message["content"] = [{"type": "text", "text": content}]
        content.insert(draw(st.integers(0, len(content))), {"type": kind, **draw(extra_fields)})
        out.expected.append(f"content.{kind}")
    for _ in range(draw(st.integers(0, 2))):
        role = draw(unknown_name)
        messages.insert(
            draw(st.integers(0, len(messages))),
            {"role": role, "content": draw(st.text(max_size=10))},
        )
        out.expected.append(f"messages.role.{role}")
    out.body["stream"] = draw(st.booleans())
    return out


@pytest.fixture(scope="module")
def upstreams(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, FakeAnthropic, FakeOpenAI]]:
    """One gateway and two validating fakes for every example (hypothesis runs many per test)."""
    ant, oai = FakeAnthropic().start(), FakeOpenAI().start()
    home = tmp_path_factory.mktemp("gateway")
    config = Config(
        home=home,
        path=home / "config.toml",
        port=0,
        backends=(ant.backend(models=["claude-*"]), oai.backend(models=["gpt-*"])),
    )
    server = GatewayServer(config, env={})
    server.start()
    try:
        yield server.url, ant, oai
    finally:
        server.stop()
        ant.stop()
        oai.stop()


def _send(url: str, dialect: str, body: dict[str, Any]) -> httpx.Response:
    if dialect == "anthropic":
        headers = {"x-api-key": "sk-client", "anthropic-version": "2023-06-01"}
        return httpx.post(f"{url}/v1/messages", json=body, headers=headers, timeout=30)
    headers = {"authorization": "Bearer sk-client"}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=30)


@SETTINGS
@given(st.sampled_from(["anthropic", "openai"]), st.data())
def test_same_dialect_forwards_unknown_things_untouched(
    upstreams: tuple[str, FakeAnthropic, FakeOpenAI], dialect: str, data: st.DataObject
) -> None:
    url, ant, oai = upstreams
    request = data.draw(salted(dialect))
    fake = ant if dialect == "anthropic" else oai
    before = len(fake.requests)
    resp = _send(url, dialect, request.body)
    assert len(fake.requests) == before + 1, (
        f"the gateway answered {resp.status_code} itself: {resp.text[:300]}"
    )
    assert fake.last.json == request.body  # equal as JSON: nothing added, dropped or reordered away
    if resp.status_code != 200:  # the upstream's own verdict, passed through unchanged
        assert resp.status_code == 400
        assert "x-driftgate-dropped" not in resp.headers


@SETTINGS
@given(st.sampled_from(["anthropic", "openai"]), st.data())
def test_across_dialects_unknown_things_are_dropped_and_named(
    upstreams: tuple[str, FakeAnthropic, FakeOpenAI], source: str, data: st.DataObject
) -> None:
    url, ant, oai = upstreams
    request = data.draw(salted(source))
    target_model = OPENAI_MODEL if source == "anthropic" else ANTHROPIC_MODEL
    request.body["model"] = target_model
    fake = oai if source == "anthropic" else ant
    before = len(fake.requests)
    resp = _send(url, source, request.body)
    assert resp.status_code == 200, resp.text[:500]
    assert len(fake.requests) == before + 1
    named = set(resp.headers.get("x-driftgate-dropped", "").split(","))
    missing = set(header_names(tuple(request.expected))) - named
    assert not missing, f"dropped but not named: {missing}"
    if request.body["stream"]:
        assert resp.headers["content-type"].startswith("text/event-stream")
    else:
        json.loads(resp.content)  # a whole answer in the client's dialect


def test_a_claude_code_style_mid_conversation_system_message_reaches_an_openai_backend(
    upstreams: tuple[str, FakeAnthropic, FakeOpenAI],
) -> None:
    url, _, oai = upstreams
    body = {
        "model": OPENAI_MODEL,
        "max_tokens": 100,
        "messages": [
            {"role": "user", "content": "say hi"},
            {"role": "system", "content": [{"type": "text", "text": "# Environment"}]},
        ],
    }
    resp = _send(url, "anthropic", body)
    assert resp.status_code == 200, resp.text
    assert oai.last.json["messages"] == [
        {"role": "user", "content": "say hi"},
        {"role": "system", "content": "# Environment"},
    ]


MID_CONVERSATION = [
    {"role": "developer", "content": "Be brief."},
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "hello"},
    {"role": "system", "content": "The user is on linux."},
    {"role": "user", "content": "which shell?"},
]


def test_openai_mid_conversation_system_message_to_anthropic_follows_the_template(
    tmp_path: Path, gateway_factory: Callable[..., Any], fake_anthropic: FakeAnthropic
) -> None:
    overlay = tmp_path / "approved"
    overlay.mkdir()
    doc = copy.deepcopy(dict(load_bundled().templates["anthropic"].doc))
    doc["models"]["claude-opus-5-5"] = {"capabilities": {"mid_conversation_system": True}}
    (overlay / "anthropic.json").write_text(canonical_json(doc), encoding="utf-8")
    plain = gateway_factory(backends=[fake_anthropic.backend(models=["claude-*"])])
    curated = gateway_factory(
        backends=[fake_anthropic.backend(models=["claude-*"])],
        templates_dir=overlay,
        app_kwargs={"store": TemplateStore(overlay)},
    )
    for gw in (plain, curated):
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-client", max_retries=0)
        reply = client.chat.completions.create(model="claude-opus-5-5", messages=MID_CONVERSATION)
        assert reply.choices[0].message.content == "echo: which shell?"
        sent = fake_anthropic.last.json
        if gw is plain:  # the template says nothing: the safe translation, one system prompt
            assert sent["system"] == [
                {"type": "text", "text": "Be brief."},
                {"type": "text", "text": "The user is on linux."},
            ]
            assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
        else:  # the template says the model takes it: kept where the client put it
            assert sent["system"] == "Be brief."
            assert sent["messages"][2] == {"role": "system", "content": "The user is on linux."}
            assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "system", "user"]
