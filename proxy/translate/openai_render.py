"""The neutral ChatRequest -> an OpenAI Chat Completions request."""

from __future__ import annotations

from typing import Any

from driftgate.proxy.translate.ir import (
    ChatRequest,
    Effort,
    FilePart,
    ImagePart,
    Message,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolDef,
    ToolResultPart,
)


def effort_for_budget(budget: int | None) -> Effort:
    """The OpenAI reasoning effort closest to an Anthropic thinking budget."""
    if budget is None:
        return "medium"
    if budget < 4096:
        return "low"
    return "medium" if budget < 16384 else "high"


def render_request(req: ChatRequest, model: str) -> tuple[dict[str, Any], list[str]]:
    """An OpenAI Chat Completions body for `req`, and what it could not express.

    Reasoning models accept only max_completion_tokens; other OpenAI-compatible servers often know
    only max_tokens, so the newer name is used only when reasoning is requested.
    """
    dropped: list[str] = []
    body: dict[str, Any] = {"model": model, "messages": _render_messages(req, dropped)}
    if req.max_tokens is not None:
        body["max_completion_tokens" if req.reasoning else "max_tokens"] = req.max_tokens
    if req.reasoning is not None:
        body["reasoning_effort"] = req.reasoning.effort or effort_for_budget(
            req.reasoning.budget_tokens
        )
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.top_k is not None:
        dropped.append("top_k")
    if req.stop:
        body["stop"] = list(req.stop)
    if req.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}  # usage is needed for the Anthropic side
    if req.tools:
        body["tools"] = [_render_tool(t) for t in req.tools]
    if req.tool_choice is not None:
        c = req.tool_choice
        if c.kind == "tool":
            body["tool_choice"] = {"type": "function", "function": {"name": c.name}}
        else:
            body["tool_choice"] = "required" if c.kind == "any" else c.kind
    if req.parallel_tool_calls is not None and req.tools:
        body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.user:
        body["user"] = req.user
    if req.response_format is not None:
        body["response_format"] = _render_format(req)
    return body, dropped


def _render_format(req: ChatRequest) -> dict[str, Any]:
    fmt = req.response_format
    if fmt is None or fmt.kind == "json_object" or fmt.schema is None:
        return {"type": "json_object"}
    spec: dict[str, Any] = {"name": fmt.name or "response", "schema": fmt.schema}
    if fmt.description:
        spec["description"] = fmt.description
    if fmt.strict is not None:
        spec["strict"] = fmt.strict
    return {"type": "json_schema", "json_schema": spec}


def _render_tool(t: ToolDef) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": t.name}
    if t.description:
        fn["description"] = t.description
    fn["parameters"] = t.parameters or {"type": "object", "properties": {}}
    return {"type": "function", "function": fn}


def _render_messages(req: ChatRequest, dropped: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if req.system:
        texts = [p.text for p in req.system]
        content: Any = texts[0] if len(texts) == 1 else [{"type": "text", "text": t} for t in texts]
        out.append({"role": "system", "content": content})
    for m in req.messages:
        if m.role == "assistant":
            out.append(_render_assistant(m, dropped))
            continue
        if m.role == "system":  # mid-conversation instructions, at their position
            texts = [p.text for p in m.parts if isinstance(p, TextPart)]
            content = texts[0] if len(texts) == 1 else [{"type": "text", "text": t} for t in texts]
            out.append({"role": "system", "content": content})
            continue
        parts = m.parts
        if len(parts) == 1 and type(parts[0]) is TextPart:  # the common turn: one string
            out.append({"role": "user", "content": parts[0].text})
            continue
        rest: list[dict[str, Any]] = []
        for p in parts:
            if isinstance(p, ToolResultPart):
                out.append(_render_tool_result(p, dropped))
            elif isinstance(p, TextPart | ImagePart | FilePart):
                rest.append(_render_content_part(p))
            else:
                dropped.append("thinking" if isinstance(p, ThinkingPart) else "user.tool_use")
        if rest or not m.parts:
            text_only = len(rest) == 1 and rest[0]["type"] == "text"
            out.append({"role": "user", "content": rest[0]["text"] if text_only else rest})
    return out


def _render_assistant(m: Message, dropped: list[str]) -> dict[str, Any]:
    texts = [p.text for p in m.parts if isinstance(p, TextPart)]
    calls = [p for p in m.parts if isinstance(p, ToolCallPart)]
    if any(isinstance(p, ThinkingPart) for p in m.parts):
        dropped.append("thinking")
    msg: dict[str, Any] = {"role": "assistant"}
    if len(texts) == 1:
        msg["content"] = texts[0]
    elif texts:
        msg["content"] = [{"type": "text", "text": t} for t in texts]
    else:
        msg["content"] = None if calls else ""
    if calls:
        msg["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls
        ]
    return msg


def _render_tool_result(p: ToolResultPart, dropped: list[str]) -> dict[str, Any]:
    texts = [c.text for c in p.content if isinstance(c, TextPart)]
    if len(texts) != len(p.content):
        dropped.append("tool_result.image")  # OpenAI tool messages carry text only
    if p.is_error:
        dropped.append("tool_result.is_error")
    content: Any = texts[0] if len(texts) == 1 else [{"type": "text", "text": t} for t in texts]
    return {"role": "tool", "tool_call_id": p.tool_call_id, "content": content if texts else ""}


def _render_content_part(p: TextPart | ImagePart | FilePart) -> dict[str, Any]:
    if isinstance(p, TextPart):
        return {"type": "text", "text": p.text}
    if isinstance(p, FilePart):
        file: dict[str, Any] = {}
        if p.data is not None:
            file["file_data"] = f"data:{p.media_type or 'application/pdf'};base64,{p.data}"
        if p.filename:
            file["filename"] = p.filename
        return {"type": "file", "file": file}
    url = f"data:{p.media_type or 'image/png'};base64,{p.data}" if p.data is not None else p.url
    return {"type": "image_url", "image_url": {"url": url}}
