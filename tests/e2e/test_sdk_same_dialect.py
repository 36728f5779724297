"""Same dialect through the gateway: Anthropic SDK -> Anthropic upstream, OpenAI SDK -> OpenAI upstream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from driftgate.proxy.analytics import Recorder
from driftgate.proxy.config import Config
from driftgate.proxy.server import GatewayServer
from tests.fakes import Behaviour
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI

USER = [{"role": "user", "content": "hello gateway"}]


def test_anthropic_non_stream_uses_the_backend_key(
    anthropic_client: anthropic.Anthropic, fake_anthropic: FakeAnthropic
) -> None:
    raw = anthropic_client.messages.with_raw_response.create(
        model="claude-sonnet-4-6", max_tokens=100, messages=USER
    )
    msg = raw.parse()
    assert msg.id.startswith("msg_fake") and msg.content[0].text == "echo: hello gateway"
    assert msg.usage.cache_read_input_tokens == 128 and msg.usage.cache_creation_input_tokens == 32
    assert raw.headers["x-driftgate-backend"] == "anthropic"
    rec = fake_anthropic.last
    assert rec.headers["x-api-key"] == "sk-ant-fake-test-key"
    assert "sk-client-anthropic" not in str(dict(rec.headers))
    assert rec.json == {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": USER}


def test_anthropic_stream_via_messages_stream(anthropic_client: anthropic.Anthropic) -> None:
    with anthropic_client.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=100,
        messages=[{"role": "user", "content": "one two three"}],
    ) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(texts) == "echo: one two three"
    assert len(texts) > 1  # streamed in pieces, not buffered into one
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 4


def test_anthropic_count_tokens_is_forwarded(
    anthropic_client: anthropic.Anthropic, fake_anthropic: FakeAnthropic
) -> None:
    counted = anthropic_client.messages.count_tokens(model="claude-sonnet-4-6", messages=USER)
    rec = fake_anthropic.last
    assert rec.path == "/v1/messages/count_tokens"
    assert counted.input_tokens > 0
    assert fake_anthropic.requests_to("/v1/messages") == []  # never billed as a completion


def test_beta_query_headers_and_unknown_fields_travel_intact(
    anthropic_client: anthropic.Anthropic, fake_anthropic: FakeAnthropic
) -> None:
    betas = "context-management-2025-06-27,some-future-beta-2099-01-01"
    extra = {
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "future_knob": {"a": [1, 2]},
    }
    msg = anthropic_client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=50,
        messages=USER,
        extra_query={"beta": "true"},
        extra_headers={
            "anthropic-beta": betas,
            "anthropic-custom-thing": "kept",
            "x-claude-code-session-id": "s-1",
        },
        extra_body=extra,
    )
    assert msg.content[0].text == "echo: hello gateway"
    rec = fake_anthropic.last
    assert rec.path == "/v1/messages" and rec.query == {"beta": "true"}
    assert rec.headers["anthropic-beta"] == betas
    assert rec.headers["anthropic-custom-thing"] == "kept"
    assert rec.headers["anthropic-version"] == anthropic_client.default_headers["anthropic-version"]
    assert rec.json["context_management"] == extra["context_management"]
    assert rec.json["future_knob"] == {"a": [1, 2]}


def test_anthropic_upstream_error_body_is_forwarded_unchanged(
    anthropic_client: anthropic.Anthropic, fake_anthropic: FakeAnthropic
) -> None:
    body = {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down, exact words"},
    }
    fake_anthropic.script(Behaviour.status(429, body=body, headers={"retry-after": "9"}))
    with pytest.raises(anthropic.RateLimitError) as exc:
        anthropic_client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=USER)
    assert exc.value.body == body
    assert exc.value.response.headers["retry-after"] == "9"
    fake_anthropic.script(Behaviour.status(400))
    with pytest.raises(anthropic.BadRequestError, match="Invalid request"):
        anthropic_client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=USER)


def test_openai_non_stream(openai_client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    done = openai_client.chat.completions.create(
        model="gpt-4o",
        messages=USER,
        max_completion_tokens=50,
        extra_body={"verbosity": "low"},
    )
    assert done.choices[0].message.content == "echo: hello gateway"
    assert done.choices[0].finish_reason == "stop"
    assert done.usage is not None and done.usage.prompt_tokens_details.cached_tokens == 64
    rec = fake_openai.last
    assert rec.path == "/v1/chat/completions"
    assert rec.headers["authorization"] == "Bearer sk-openai-fake-test-key"
    assert rec.json["verbosity"] == "low" and rec.json["max_completion_tokens"] == 50


def test_openai_stream_with_include_usage(openai_client: openai.OpenAI) -> None:
    chunks = list(
        openai_client.chat.completions.create(
            model="gpt-4o",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello gateway"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]


def test_openai_stream_without_include_usage_has_no_usage_chunk(
    openai_client: openai.OpenAI,
) -> None:
    chunks = list(openai_client.chat.completions.create(model="gpt-4o", messages=USER, stream=True))
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_openai_stream_without_usage_is_forwarded_unchanged_and_recorded_as_unpriced(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    recorder = Recorder(tmp_path / "usage.sqlite3")
    config = Config(
        home=tmp_path, path=tmp_path / "c.toml", port=0, backends=(fake_openai.backend(),)
    )
    with GatewayServer(config, recorder=recorder, env={}) as gw:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0)
        chunks = list(client.chat.completions.create(model="gpt-4o", messages=USER, stream=True))
        with_usage = client.chat.completions.create(
            model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}
        )
        assert list(with_usage)[-1].usage is not None
    assert "stream_options" not in fake_openai.requests[0].json  # the client's request, as sent
    assert all(c.usage is None for c in chunks)
    rows = recorder.summary()
    recorder.close()
    # two streams: the second reported usage, the first could not (its total is a lower bound)
    assert rows[0]["requests"] == 2 and rows[0]["unpriced"] == 1
    assert rows[0]["output_tokens"] == 3


def test_openai_upstream_errors_reach_the_sdk(
    openai_client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Behaviour.status(429))
    with pytest.raises(openai.RateLimitError, match="Rate limit reached"):
        openai_client.chat.completions.create(model="gpt-4o", messages=USER)
    err: dict[str, Any] = {
        "error": {
            "message": "exact upstream words",
            "type": "invalid_request_error",
            "param": "x",
            "code": None,
        }
    }
    fake_openai.script(Behaviour.status(400, body=err))
    with pytest.raises(openai.BadRequestError) as exc:
        openai_client.chat.completions.create(model="gpt-4o", messages=USER)
    assert exc.value.body == err["error"]
