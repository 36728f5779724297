"""Recorded requests and the scripted behaviours a fake upstream can be told to show."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDictProxy


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received, exactly as it arrived."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDictProxy[str]
    body_bytes: bytes
    json: Any = None


@dataclass(frozen=True)
class Behaviour:
    """How the fake answers one request (queued with `fake.script(...)`)."""

    kind: str
    code: int = 0
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    text: str | None = None
    count: int = 1
    after_events: int = 3
    error_type: str = "overloaded_error"

    @classmethod
    def status(
        cls, code: int, body: Any = None, headers: dict[str, str] | None = None
    ) -> Behaviour:
        """Answer with HTTP `code`; `body` defaults to an error in the fake's own dialect."""
        return cls("status", code=code, body=body, headers=dict(headers or {}))

    @classmethod
    def reset(cls) -> Behaviour:
        """Close the connection without any response (a TCP reset)."""
        return cls("reset")

    @classmethod
    def stall(cls, seconds: float) -> Behaviour:
        """Accept the request, send nothing for `seconds`, then answer normally."""
        return cls("stall", seconds=seconds)

    @classmethod
    def malformed_sse(cls, after_events: int = 3) -> Behaviour:
        """Stream a `data:` line of broken JSON after `after_events` events, then carry on."""
        return cls("malformed_sse", after_events=after_events)

    @classmethod
    def truncate(cls, after_events: int = 3) -> Behaviour:
        """Stream `after_events` events, then close the connection before the terminal event."""
        return cls("truncate", after_events=after_events)

    @classmethod
    def slow_stream(cls, delay: float) -> Behaviour:
        """Wait `delay` seconds before each streamed event (non-stream: before the answer)."""
        return cls("slow_stream", seconds=delay)

    @classmethod
    def stream_error(cls, error_type: str = "overloaded_error", after_events: int = 2) -> Behaviour:
        """Start a 200 stream, then send an in-stream error event (Anthropic) or error chunk."""
        return cls("stream_error", error_type=error_type, after_events=after_events)

    @classmethod
    def reply(cls, text: str) -> Behaviour:
        """Answer with this assistant text instead of the echo."""
        return cls("reply", text=text)

    @classmethod
    def tool_calls(cls, count: int = 1) -> Behaviour:
        """Answer with `count` parallel calls (to the request's tools, in order)."""
        return cls("tool_calls", count=count)
