"""The scenarios: what a client sends, and how to tell that a target answered it right."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

WRK_DIR = Path(__file__).resolve().parent / "wrk"
CLIENT_KEY = "sk-bench-client-key"  # LiteLLM's master key; the other targets ignore it
ANTHROPIC_HEADERS = {
    "content-type": "application/json",
    "x-api-key": CLIENT_KEY,
    "anthropic-version": "2023-06-01",
}
OPENAI_HEADERS = {"content-type": "application/json", "authorization": f"Bearer {CLIENT_KEY}"}


def _anthropic_message(body: bytes) -> str | None:
    doc = json.loads(body)
    if doc.get("type") != "message" or not doc.get("content"):
        return f"not an Anthropic message: {body[:200]!r}"
    return None


def _openai_completion(body: bytes) -> str | None:
    doc = json.loads(body)
    if doc.get("object") != "chat.completion" or not doc.get("choices"):
        return f"not an OpenAI chat completion: {body[:200]!r}"
    return None


def _anthropic_stream(body: bytes) -> str | None:
    if b"event: message_stop" not in body or b"content_block_delta" not in body:
        return f"not a complete Anthropic event stream: {body[-200:]!r}"
    return None


def _openai_stream(body: bytes) -> str | None:
    if b"data: [DONE]" not in body or b"chat.completion.chunk" not in body:
        return f"not a complete OpenAI event stream: {body[-200:]!r}"
    return None


def _response(body: bytes) -> str | None:
    doc = json.loads(body)
    if doc.get("object") != "response" or doc.get("status") != "completed" or not doc.get("output"):
        return f"not a completed Responses API response: {body[:200]!r}"
    return None


def _response_stream(body: bytes) -> str | None:
    if b"event: response.completed" not in body or b"response.output_text.delta" not in body:
        return f"not a complete Responses API event stream: {body[-200:]!r}"
    return None


@dataclass(frozen=True)
class Scenario:
    """One request shape, replayed by `bench/wrk/<script>.lua` and checked once per target first."""

    name: str
    title: str
    script: str
    path: str
    headers: dict[str, str] = field(hash=False)
    check: Callable[[bytes], str | None] = field(hash=False)

    @property
    def lua(self) -> Path:
        """The wrk script."""
        return WRK_DIR / f"{self.script}.lua"

    @property
    def body(self) -> bytes:
        """The request body (the same file the wrk script sends)."""
        return (WRK_DIR / "bodies" / f"{self.script}.json").read_bytes()


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("openai", "non-streaming OpenAI chat (POST /v1/chat/completions)", "openai_chat",
             "/v1/chat/completions", OPENAI_HEADERS, _openai_completion),
    Scenario("anthropic", "non-streaming Anthropic messages (POST /v1/messages)", "anthropic_messages",
             "/v1/messages", ANTHROPIC_HEADERS, _anthropic_message),
    Scenario("stream", "streaming Anthropic messages (SSE, 13 events)", "anthropic_stream",
             "/v1/messages", ANTHROPIC_HEADERS, _anthropic_stream),
    Scenario("stream-openai", "streaming OpenAI chat (SSE, 10 chunks)", "openai_stream",
             "/v1/chat/completions", OPENAI_HEADERS, _openai_stream),
    Scenario("translate", "Anthropic client -> OpenAI backend (translated; direct/minimal: untranslated)",
             "translate", "/v1/messages", ANTHROPIC_HEADERS, _anthropic_message),
    Scenario("translate-stream", "streaming Anthropic client -> OpenAI backend (translated; direct/minimal: untranslated)",
             "translate_stream", "/v1/messages", ANTHROPIC_HEADERS, _anthropic_stream),
    Scenario("translate-stream-openai", "streaming OpenAI chat client -> Anthropic backend (translated; direct/minimal: untranslated)",
             "translate_stream_openai", "/v1/chat/completions", OPENAI_HEADERS, _openai_stream),
    Scenario("translate-openai", "OpenAI chat client -> Anthropic backend (translated; direct/minimal: untranslated)",
             "translate_openai", "/v1/chat/completions", OPENAI_HEADERS, _openai_completion),
    Scenario("responses", "Responses API -> an OpenAI backend that serves it (POST /v1/responses, forwarded)",
             "responses", "/v1/responses", OPENAI_HEADERS, _response),
    Scenario("responses-translate", "Responses client -> Anthropic backend (translated; direct/minimal: untranslated)",
             "responses_translate", "/v1/responses", OPENAI_HEADERS, _response),
    Scenario("responses-stream", "streaming Responses API -> an OpenAI backend that serves it (forwarded)",
             "responses_stream", "/v1/responses", OPENAI_HEADERS, _response_stream),
    Scenario("responses-translate-stream", "streaming Responses client -> Anthropic stream (translated; direct/minimal: untranslated)",
             "responses_translate_stream", "/v1/responses", OPENAI_HEADERS, _response_stream),
    Scenario("responses-stored", "Responses client with store: true -> Anthropic backend (translated; the gateway files each turn)",
             "responses_stored", "/v1/responses", OPENAI_HEADERS, _response),
    Scenario("responses-stored-stream", "streaming Responses client with store: true -> Anthropic stream (translated; the gateway files each turn)",
             "responses_stored_stream", "/v1/responses", OPENAI_HEADERS, _response_stream),
    Scenario("responses-bridge-stream", "streaming Responses client -> a Chat-only OpenAI backend's stream (bridged; direct/minimal: untranslated)",
             "responses_bridge_stream", "/v1/responses", OPENAI_HEADERS, _response_stream),
)  # fmt: skip


def by_name(name: str) -> Scenario:
    """The scenario called `name`."""
    for s in SCENARIOS:
        if s.name == name:
            return s
    raise KeyError(name)


def check_once(port: int, scenario: Scenario, timeout: float = 30.0) -> str | None:
    """Send the scenario's request once; None when the answer is right, else what was wrong."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", scenario.path, body=scenario.body, headers=scenario.headers)
        resp = conn.getresponse()
        body = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        return f"request failed: {exc!r}"
    finally:
        conn.close()
    if resp.status != 200:
        return f"HTTP {resp.status}: {body[:300]!r}"
    try:
        return scenario.check(body)
    except ValueError as exc:
        return f"unreadable answer ({exc}): {body[:200]!r}"
