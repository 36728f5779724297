"""The neutral ChatRequest -> an Anthropic Messages request."""

from __future__ import annotations

import base64
import re
from typing import Any

from driftgate.proxy.translate.input_checks import arguments_object
from driftgate.proxy.translate.ir import (
    ChatRequest,
    FilePart,
    ImagePart,
    Message,
    Part,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)

# Anthropic requires max_tokens; OpenAI does not. This is what a request without one gets.
DEFAULT_MAX_TOKENS = 4096
MIN_THINKING_BUDGET = 1024
BUDGET_FOR_EFFORT = {"low": 2048, "medium": 8192, "high": 24576}
_TOOL_ID_BAD = re.compile(r"[^a-zA-Z0-9_-]")


def render_request(req: ChatRequest, model: str) -> tuple[dict[str, Any], list[str]]:
    """An Anthropic Messages body for `req`, and what it could not express.

    A request without max_tokens gets DEFAULT_MAX_TOKENS (4096), plus the thinking budget when
    reasoning is on, since Anthropic requires max_tokens and counts thinking against it.
    """
    dropped: list[str] = []
    body: dict[str, Any] = {"model": model}
    thinking = _render_thinking(req, dropped)
    choice = _render_choice(req)
    if thinking and choice and choice["type"] in ("any", "tool"):
        # Anthropic refuses forced tool use with thinking on; the forced call is what the client needs.
        dropped.append("reasoning_effort")
        thinking = None
    budget = thinking.get("budget_tokens", 0) if thinking else 0
    body["max_tokens"] = (
        req.max_tokens if req.max_tokens is not None else DEFAULT_MAX_TOKENS + budget
    )
    if req.system:
        texts = [p.text for p in req.system]
        body["system"] = (
            texts[0] if len(texts) == 1 else [{"type": "text", "text": t} for t in texts]
        )
    body["messages"] = _render_messages(req.messages, dropped)
    if thinking:
        body["thinking"] = thinking
    if req.temperature is not None:
        if thinking and req.temperature != 1:
            dropped.append("temperature")  # Anthropic accepts only temperature 1 with thinking
        else:
            body["temperature"] = req.temperature
    if req.top_p is not None:
        if thinking and req.top_p < 0.95:
            dropped.append("top_p")
        else:
            body["top_p"] = req.top_p
    if req.top_k is not None:
        body["top_k"] = req.top_k
    if req.stop:
        body["stop_sequences"] = list(req.stop)
    if req.stream:
        body["stream"] = True
    if req.tools:
        body["tools"] = [
            {"name": t.name, **({"description": t.description} if t.description else {}),
             "input_schema": t.parameters or {"type": "object", "properties": {}}}
            for t in req.tools
        ]  # fmt: skip
    if choice:
        body["tool_choice"] = choice
    if req.user:
        body["metadata"] = {"user_id": req.user}
    if req.response_format is not None:
        fmt = req.response_format
        if fmt.kind == "json_schema" and fmt.schema is not None:
            body["output_config"] = {"format": {"type": "json_schema", "schema": fmt.schema}}
        else:
            dropped.append("response_format.json_object")  # Anthropic has no bare JSON mode
    return body, dropped


def _render_thinking(req: ChatRequest, dropped: list[str]) -> dict[str, Any] | None:
    r = req.reasoning
    if r is None:
        return None
    if r.adaptive:
        return {"type": "adaptive"}
    budget = (
        r.budget_tokens if r.budget_tokens is not None else BUDGET_FOR_EFFORT[r.effort or "medium"]
    )
    if req.max_tokens is not None:
        budget = min(budget, req.max_tokens - 1)
    if budget < MIN_THINKING_BUDGET:
        # max_tokens leaves no room for Anthropic's minimum thinking budget
        dropped.append("reasoning_effort")
        return None
    return {"type": "enabled", "budget_tokens": budget}


def _render_choice(req: ChatRequest) -> dict[str, Any] | None:
    c = req.tool_choice
    if c is None and req.parallel_tool_calls is False and req.tools:
        c = ToolChoice("auto")
    if c is None:
        return None
    out: dict[str, Any] = {"type": c.kind}
    if c.kind == "tool":
        out["name"] = c.name
    if req.parallel_tool_calls is False and c.kind != "none":
        out["disable_parallel_tool_use"] = True
    return out


def tool_id(raw: str) -> str:
    """A tool call id Anthropic accepts (letters, digits, _ and - only)."""
    return _TOOL_ID_BAD.sub("_", raw) if _TOOL_ID_BAD.search(raw) else raw


def _render_messages(messages: tuple[Message, ...], dropped: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        if m.role == "system":
            # Only rendered in place when the model accepts it (translate hoists it otherwise).
            texts = [p.text for p in m.parts if isinstance(p, TextPart)]
            content = texts[0] if len(texts) == 1 else [{"type": "text", "text": t} for t in texts]
            out.append({"role": "system", "content": content})
            continue
        parts = m.parts
        if len(parts) == 1 and type(parts[0]) is TextPart:  # the common turn: one text
            blocks: list[dict[str, Any]] = [{"type": "text", "text": parts[0].text}]
        else:
            blocks = [b for p in parts if (b := _render_part(p, i, dropped)) is not None]
        if not blocks and m.parts:
            continue  # all of it was dropped (unsigned thinking): an empty turn would be refused
        # Tool results and the user's next words arrive as separate OpenAI messages: one turn here.
        if out and out[-1]["role"] == m.role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": m.role, "content": blocks})
    for turn in out:
        content = turn["content"]
        if len(content) == 1 and type(content) is list and content[0]["type"] == "text":
            turn["content"] = content[0]["text"]
    return out


def _render_part(p: Part, i: int, dropped: list[str]) -> dict[str, Any] | None:
    if isinstance(p, TextPart):
        return {"type": "text", "text": p.text}
    if isinstance(p, ImagePart):
        return _render_image(p)
    if isinstance(p, FilePart):
        return _render_document(p, dropped)
    if isinstance(p, ToolCallPart):
        return {
            "type": "tool_use",
            "id": tool_id(p.id),
            "name": p.name,
            "input": arguments_object(p.arguments, f"messages[{i}]", strict=True),
        }
    if isinstance(p, ToolResultPart):
        out: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id(p.tool_call_id)}
        if len(p.content) == 1 and isinstance(p.content[0], TextPart):
            out["content"] = p.content[0].text
        elif p.content:
            out["content"] = [
                {"type": "text", "text": c.text} if isinstance(c, TextPart) else _render_image(c)
                for c in p.content
            ]
        if p.is_error:
            out["is_error"] = True
        return out
    if p.redacted is not None:
        return {"type": "redacted_thinking", "data": p.redacted}
    if p.signature:
        return {"type": "thinking", "thinking": p.text, "signature": p.signature}
    dropped.append("thinking")  # unsigned reasoning from another backend: Anthropic would reject it
    return None


def _render_document(p: FilePart, dropped: list[str]) -> dict[str, Any] | None:
    if p.data is not None:
        media = p.media_type or "application/pdf"
        if media.startswith("text/"):
            text = base64.b64decode(p.data).decode("utf-8", errors="replace")
            source: dict[str, Any] = {"type": "text", "media_type": "text/plain", "data": text}
        else:
            source = {"type": "base64", "media_type": media, "data": p.data}
    elif p.url is not None:
        source = {"type": "url", "url": p.url}
    else:
        dropped.append("input_file")
        return None
    block: dict[str, Any] = {"type": "document", "source": source}
    if p.filename:
        block["title"] = p.filename
    return block


def _render_image(p: ImagePart) -> dict[str, Any]:
    if p.data is not None:
        source = {"type": "base64", "media_type": p.media_type or "image/png", "data": p.data}
        return {"type": "image", "source": source}
    return {"type": "image", "source": {"type": "url", "url": p.url}}
