"""A captured Claude Code 2.1.332 request (tests/fixtures/clients/) through the gateway.

The fixture is what `claude -p "say hi"` sent, prose and ids replaced: a system message after the
first user turn (the environment block, carrying a per-turn `output_config`), adaptive thinking
with `display`, `output_config.effort`, `context_management`, twelve tools (one with
`defer_loading`), cache_control everywhere, and the betas header.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI

FIXTURE = Path(__file__).parents[1] / "fixtures" / "clients" / "claude-code-2.1.332-messages.json"
# The SDK sets these itself; the rest of the captured headers go along as sent.
_SDK_HEADERS = {"content-type", "accept", "user-agent"} | {"x-stainless-" + h for h in (
    "arch", "lang", "os", "package-version", "retry-count", "runtime", "runtime-version", "timeout")}  # fmt: skip


@pytest.fixture(scope="module")
def captured() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(FIXTURE.read_text())
    return doc


def _sdk_call(captured: dict[str, Any]) -> dict[str, Any]:
    """The captured request as `messages.stream(...)` keywords (unknown fields in extra_body)."""
    body = dict(captured["body"])
    del body["stream"]
    known = {"model", "messages", "system", "tools", "metadata", "max_tokens", "thinking",
             "output_config"}  # fmt: skip
    headers = {k: v for k, v in captured["headers"].items() if k not in _SDK_HEADERS}
    return {
        **{k: v for k, v in body.items() if k in known},
        "extra_body": {k: v for k, v in body.items() if k not in known},
        "extra_headers": headers,
        "extra_query": {"beta": "true"},
    }


def test_fixture_keeps_the_shape_that_broke_translation(captured: dict[str, Any]) -> None:
    body = captured["body"]
    assert [m["role"] for m in body["messages"]] == ["user", "system"]
    assert body["thinking"] == {"type": "adaptive", "display": "omitted"}
    assert body["output_config"] == {"effort": "medium"}
    assert "context_management" in body and body["stream"] is True
    assert "per-turn-control-2026-07-01" in captured["headers"]["anthropic-beta"]
    assert "mid-conversation-tool-changes-2026-07-01" in captured["headers"]["anthropic-beta"]
    assert not any(k in json.dumps(captured) for k in ("sk-ant-", "x-api-key"))


def test_translated_to_an_openai_backend(
    gateway_factory: Callable[..., Any], fake_openai: FakeOpenAI, captured: dict[str, Any]
) -> None:
    gw = gateway_factory(backends=[fake_openai.backend(models=["claude-*"])])
    client = anthropic.Anthropic(base_url=gw.url, api_key="sk-ant-test-client", max_retries=0)
    with client.messages.stream(**_sdk_call(captured)) as stream:
        message = stream.get_final_message()
        headers = stream.response.headers
    # The answer comes back as an Anthropic message the SDK accumulates.
    assert message.role == "assistant" and message.model == "claude-opus-5-5"
    assert message.content[-1].type == "text" and message.content[-1].text.endswith("say hi")
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0
    sent = fake_openai.last.json
    assert fake_openai.last.path == "/v1/chat/completions"
    roles = [m["role"] for m in sent["messages"]]
    assert roles == ["system", "user", "system"]  # the environment block stays after the user turn
    assert sent["messages"][2]["content"].startswith("# Environment")
    prompt = [p["text"] for p in sent["messages"][0]["content"]]
    assert prompt[0] == "x-anthropic-billing-header: [redacted]" and len(prompt) == 3
    names = [t["function"]["name"] for t in sent["tools"]]
    assert names == [t["name"] for t in captured["body"]["tools"]]
    bash = next(t["function"] for t in sent["tools"] if t["function"]["name"] == "Bash")
    assert bash["parameters"] == next(
        t["input_schema"] for t in captured["body"]["tools"] if t["name"] == "Bash"
    )
    assert sent["reasoning_effort"] == "medium"  # adaptive thinking at output_config.effort
    assert sent["max_completion_tokens"] == 128000
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert "thinking" not in sent and "context_management" not in sent
    dropped = set(headers["x-driftgate-dropped"].split(","))
    assert {"context_management", "thinking.display", "cache_control",
            "messages.output_config", "tools.defer_loading"} <= dropped  # fmt: skip
    assert "anthropic-beta" not in fake_openai.last.headers


def test_forwarded_untouched_to_an_anthropic_backend(
    gateway_factory: Callable[..., Any], fake_anthropic: FakeAnthropic, captured: dict[str, Any]
) -> None:
    gw = gateway_factory(backends=[fake_anthropic.backend(models=["claude-*"])])
    raw = json.dumps(captured["body"]).encode()
    headers = {**captured["headers"], "x-api-key": "sk-ant-test-client"}
    resp = httpx.post(f"{gw.url}{captured['path']}", content=raw, headers=headers, timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert b"event: message_stop" in resp.content
    got = fake_anthropic.last
    assert got.body_bytes == raw  # byte for byte: the system message, every unknown field
    assert got.query == {"beta": "true"}
    assert got.headers["anthropic-beta"] == captured["headers"]["anthropic-beta"]
    assert "x-driftgate-dropped" not in resp.headers
