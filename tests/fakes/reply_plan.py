"""Decide what a fake model answers: echo, tool calls, stop sequences, max_tokens, usage."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tests.fakes.behaviour import Behaviour


@dataclass(frozen=True)
class ToolCall:
    """One tool call the fake decided to make."""

    id: str
    name: str
    arguments: str  # JSON text, streamed in fragments


@dataclass(frozen=True)
class Ask:
    """The dialect-neutral facts of a request that decide the reply."""

    last_user_text: str
    tool_result_text: str | None
    tools: Sequence[tuple[str, dict[str, Any]]]
    stop_sequences: Sequence[str]
    max_tokens: int | None
    want_thinking: bool
    input_tokens: int


@dataclass(frozen=True)
class Reply:
    """What the fake answers, before it is shaped into a dialect."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    thinking: str | None
    stop: str  # end_turn | tool_use | max_tokens | stop_sequence
    stop_sequence: str | None
    input_tokens: int
    output_tokens: int
    redacted: bool = False  # the reasoning comes back as a redacted_thinking block


# Anthropic's documented test prompt: with thinking on, the answer holds a redacted_thinking block.
REDACTED_TRIGGER = (
    "ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING_"
    "46C9A13E193C177646C7398A98432ECCCE4C1253D5E2D82641AC0E52CC2876CB"
)


_call_ids = itertools.count(1)
_WORD = re.compile(r"\S+\s*|\s+")


def text_of(content: Any) -> str:
    """The text parts of a message's content (a string, or a list of typed parts), joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def words(text: str) -> list[str]:
    """Split text into streamable pieces that join back to it exactly."""
    return _WORD.findall(text)


def fragments(text: str, parts: int = 3) -> list[str]:
    """Split a JSON text into `parts` pieces (as upstreams stream tool arguments)."""
    if len(text) < parts:
        return [text]
    step = -(-len(text) // parts)
    return [text[i : i + step] for i in range(0, len(text), step)]


def sample_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """Deterministic arguments that fit a tool's JSON Schema properties."""
    out: dict[str, Any] = {}
    props = schema.get("properties") or {}
    for name, spec in props.items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind == "string":
            out[name] = f"value-{name}"
        elif kind in ("integer", "number"):
            out[name] = 1
        elif kind == "boolean":
            out[name] = True
        elif kind == "array":
            out[name] = []
        elif kind == "object":
            out[name] = {}
        else:
            out[name] = None
    return out


def estimate_tokens(*parts: Any) -> int:
    """A deterministic token estimate: compact JSON length / 4."""
    raw = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return max(1, len(raw) // 4)


def plan_reply(ask: Ask, behaviour: Behaviour | None, id_prefix: str) -> Reply:
    """Decide text or tool calls, then apply stop sequences and max_tokens like a model would."""
    lowered = ask.last_user_text.lower()
    wants_tools = bool(ask.tools) and "call tool" in lowered and ask.tool_result_text is None
    calls: list[ToolCall] = []
    text = ""
    if behaviour is not None and behaviour.kind == "reply":
        text = behaviour.text or ""
    elif ask.tools and (wants_tools or (behaviour is not None and behaviour.kind == "tool_calls")):
        count = behaviour.count if behaviour and behaviour.kind == "tool_calls" else 1
        if behaviour is None and ("two tools" in lowered or "parallel" in lowered):
            count = 2
        for i in range(count):
            name, schema = ask.tools[i % len(ask.tools)]
            args = json.dumps(sample_arguments(schema))
            calls.append(
                ToolCall(id=f"{id_prefix}fake{next(_call_ids):05d}", name=name, arguments=args)
            )
    elif ask.tool_result_text is not None:
        text = f"tool result: {ask.tool_result_text}"
    else:
        text = f"echo: {ask.last_user_text}"
    stop = "tool_use" if calls else "end_turn"
    stop_sequence: str | None = None
    hits = [(text.find(s), s) for s in ask.stop_sequences if s and s in text]
    if hits:
        at, stop_sequence = min(hits)
        text, stop = text[:at], "stop_sequence"
    pieces = words(text)
    if ask.max_tokens is not None and len(pieces) > ask.max_tokens:
        text, stop, stop_sequence = "".join(pieces[: ask.max_tokens]), "max_tokens", None
        pieces = pieces[: ask.max_tokens]
    thinking = f"Considering: {ask.last_user_text}" if ask.want_thinking else None
    output = len(pieces) + sum(len(c.arguments) // 4 + 1 for c in calls)
    output += len(words(thinking)) if thinking else 0
    return Reply(
        text=text,
        tool_calls=tuple(calls),
        thinking=thinking,
        stop=stop,
        stop_sequence=stop_sequence,
        input_tokens=ask.input_tokens,
        output_tokens=max(1, output),
        redacted=ask.want_thinking and REDACTED_TRIGGER in ask.last_user_text,
    )
