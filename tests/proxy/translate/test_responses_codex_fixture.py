"""A request the real Codex CLI (0.171.0) sent, translated for an Anthropic and a Chat-only backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from driftgate.proxy.translate import translate_request

FIXTURE = Path(__file__).parents[2] / "fixtures" / "codex-0.171.0-responses-request.json"
FUNCTIONS = ["exec_command", "write_stdin", "request_user_input", "view_image", "get_goal",
             "create_goal", "update_goal"]  # fmt: skip


@pytest.fixture
def body() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(FIXTURE.read_text())
    return loaded


def test_codex_request_to_anthropic(body: dict[str, Any]) -> None:
    tr = translate_request(body, "responses", "anthropic", model="claude-sonnet-4-6", stream=True)
    sent = tr.body
    system = sent["system"]
    texts = [system] if isinstance(system, str) else [b["text"] for b in system]
    assert texts[0].startswith("You are a coding agent running in the Codex CLI")
    assert any("<skills_instructions>" in t for t in texts)
    # Two consecutive user items become one user turn, in order.
    assert [m["role"] for m in sent["messages"]] == ["user"]
    content = sent["messages"][0]["content"]
    assert "<environment_context>" in content[0]["text"] and content[-1]["text"] == "say hello"
    assert [t["name"] for t in sent["tools"]] == FUNCTIONS
    assert sent["stream"] is True and sent["tool_choice"] == {"type": "auto"}
    assert "thinking" not in sent  # reasoning.summary alone asks for no effort
    for name in ("tools.namespace", "tools.web_search", "client_metadata", "prompt_cache_key"):
        assert name in tr.dropped
    assert not any(d.startswith("input.") for d in tr.dropped)


def test_codex_request_to_a_chat_only_backend(body: dict[str, Any]) -> None:
    tr = translate_request(body, "responses", "openai", model="qwen2.5-coder:7b", stream=True)
    sent = tr.body
    roles = [m["role"] for m in sent["messages"]]
    assert roles == ["system", "user"]
    assert [t["function"]["name"] for t in sent["tools"]] == FUNCTIONS
    assert sent["parallel_tool_calls"] is True and sent["tool_choice"] == "auto"
    assert sent["stream_options"] == {"include_usage": True}
    assert "tools.namespace" in tr.dropped and "tools.web_search" in tr.dropped
