"""Anthropic Messages request -> the neutral ChatRequest."""

from __future__ import annotations

from typing import Any

from driftgate.proxy.errors import InvalidRequest
from driftgate.proxy.translate.input_checks import (
    as_dict,
    as_list,
    as_str,
    dumps,
    opt_int,
    opt_number,
    unique,
)
from driftgate.proxy.translate.ir import (
    ChatRequest,
    ImagePart,
    Message,
    Part,
    Reasoning,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolChoice,
    ToolDef,
    ToolResultPart,
)

_KNOWN = frozenset(
    {"model", "messages", "system", "max_tokens", "temperature", "top_p", "top_k",
     "stop_sequences", "stream", "tools", "tool_choice", "thinking", "metadata"}
)  # fmt: skip
# Assistant history from Anthropic-hosted tools: meaningless to any other backend.
_SERVER_BLOCKS = frozenset(
    {"server_tool_use", "web_search_tool_result", "web_fetch_tool_result",
     "code_execution_tool_result", "bash_code_execution_tool_result",
     "text_editor_code_execution_tool_result", "mcp_tool_use", "mcp_tool_result",
     "container_upload"}
)  # fmt: skip


def parse_request(body: dict[str, Any]) -> ChatRequest:
    """An Anthropic Messages request body as a ChatRequest; InvalidRequest when malformed."""
    dropped = [k for k in body if k not in _KNOWN]
    # A loop with the field paths built only when needed: ~1 us of a 4 us parse went on them.
    messages = tuple(
        [_message(m, i, dropped) for i, m in enumerate(as_list(body.get("messages"), "messages"))]
    )
    raw_system = body.get("system")
    if isinstance(raw_system, str):
        system: tuple[TextPart, ...] = (TextPart(raw_system),) if raw_system else ()
    else:
        system = _system(raw_system, dropped)
    tools = _tools(body.get("tools"), dropped)
    choice, parallel = _tool_choice(body.get("tool_choice"))
    user = None
    if body.get("metadata") is not None:
        metadata = as_dict(body["metadata"], "metadata")
        user = metadata.get("user_id") if isinstance(metadata.get("user_id"), str) else None
        dropped += [f"metadata.{k}" for k in metadata if k != "user_id"]
    stop = body.get("stop_sequences")
    return ChatRequest(
        messages=messages,
        system=system,
        max_tokens=opt_int(body.get("max_tokens"), "max_tokens"),
        temperature=opt_number(body.get("temperature"), "temperature"),
        top_p=opt_number(body.get("top_p"), "top_p"),
        top_k=opt_int(body.get("top_k"), "top_k"),
        stop=tuple([as_str(s, "stop_sequences[]") for s in as_list(stop, "stop_sequences")])
        if stop
        else (),
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=parallel,
        reasoning=_thinking(body.get("thinking")),
        user=user,
        dropped=unique(dropped) if dropped else (),
    )


def _system(raw: Any, dropped: list[str]) -> tuple[TextPart, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (TextPart(raw),) if raw else ()
    out = []
    for i, block in enumerate(as_list(raw, "system")):
        block = as_dict(block, f"system[{i}]")
        if block.get("type") != "text":
            raise InvalidRequest(f"system[{i}]: only text blocks are allowed in system")
        if "cache_control" in block:
            dropped.append("cache_control")
        out.append(TextPart(as_str(block.get("text"), f"system[{i}].text")))
    return tuple(out)


def _message(raw: Any, i: int, dropped: list[str]) -> Message:
    if not isinstance(raw, dict):
        as_dict(raw, f"messages[{i}]")
    role = raw.get("role")
    if role not in ("user", "assistant"):
        raise InvalidRequest(f"messages[{i}].role must be 'user' or 'assistant', got {role!r}")
    content = raw.get("content")
    if isinstance(content, str):
        return Message(role, (TextPart(content),))
    where = f"messages[{i}]"
    parts: list[Part] = []
    for j, block in enumerate(as_list(content, f"{where}.content")):
        part = _block(as_dict(block, f"{where}.content[{j}]"), f"{where}.content[{j}]", dropped)
        if part is not None:
            parts.append(part)
    return Message(role, tuple(parts))


def _block(block: dict[str, Any], where: str, dropped: list[str]) -> Part | None:
    kind = block.get("type")
    if "cache_control" in block:
        dropped.append("cache_control")
    if kind == "text":
        if block.get("citations"):
            dropped.append("citations")
        return TextPart(as_str(block.get("text"), f"{where}.text"))
    if kind == "image":
        return _image(as_dict(block.get("source"), f"{where}.source"), where)
    if kind == "tool_use":
        return ToolCallPart(
            id=as_str(block.get("id"), f"{where}.id"),
            name=as_str(block.get("name"), f"{where}.name"),
            arguments=dumps(as_dict(block.get("input", {}), f"{where}.input")),
        )
    if kind == "tool_result":
        return _tool_result(block, where)
    if kind == "thinking":
        return ThinkingPart(
            as_str(block.get("thinking", ""), f"{where}.thinking"), block.get("signature")
        )
    if kind == "redacted_thinking":
        return ThinkingPart("", redacted=as_str(block.get("data"), f"{where}.data"))
    if kind in _SERVER_BLOCKS:
        dropped.append(f"content.{kind}")
        return None
    raise InvalidRequest(
        f"{where}: content block type {kind!r} cannot be translated to another dialect"
    )


def _image(source: dict[str, Any], where: str) -> ImagePart:
    kind = source.get("type")
    if kind == "base64":
        return ImagePart(
            media_type=as_str(source.get("media_type"), f"{where}.source.media_type"),
            data=as_str(source.get("data"), f"{where}.source.data"),
        )
    if kind == "url":
        return ImagePart(url=as_str(source.get("url"), f"{where}.source.url"))
    raise InvalidRequest(
        f"{where}: image source type {kind!r} cannot be translated (use base64 or url)"
    )


def _tool_result(block: dict[str, Any], where: str) -> ToolResultPart:
    raw = block.get("content")
    content: list[TextPart | ImagePart] = []
    if isinstance(raw, str):
        content.append(TextPart(raw))
    elif raw is not None:
        for k, item in enumerate(as_list(raw, f"{where}.content")):
            item = as_dict(item, f"{where}.content[{k}]")
            if item.get("type") == "text":
                content.append(TextPart(as_str(item.get("text"), f"{where}.content[{k}].text")))
            elif item.get("type") == "image":
                content.append(_image(as_dict(item.get("source"), f"{where}.source"), where))
            else:
                raise InvalidRequest(
                    f"{where}.content[{k}]: type {item.get('type')!r} cannot be translated"
                )
    return ToolResultPart(
        tool_call_id=as_str(block.get("tool_use_id"), f"{where}.tool_use_id"),
        content=tuple(content),
        is_error=bool(block.get("is_error")),
    )


def _tools(raw: Any, dropped: list[str]) -> tuple[ToolDef, ...]:
    if raw is None:
        return ()
    out = []
    for i, tool in enumerate(as_list(raw, "tools")):
        tool = as_dict(tool, f"tools[{i}]")
        if "cache_control" in tool:
            dropped.append("cache_control")
        if tool.get("type") not in (None, "custom"):
            dropped.append(f"tools.{tool['type']}")
            continue
        out.append(
            ToolDef(
                name=as_str(tool.get("name"), f"tools[{i}].name"),
                description=tool.get("description")
                if isinstance(tool.get("description"), str)
                else None,
                parameters=as_dict(
                    tool.get("input_schema", {"type": "object"}), f"tools[{i}].input_schema"
                ),
            )
        )
    return tuple(out)


def _tool_choice(raw: Any) -> tuple[ToolChoice | None, bool | None]:
    if raw is None:
        return None, None
    raw = as_dict(raw, "tool_choice")
    kind = raw.get("type")
    if kind not in ("auto", "any", "none", "tool"):
        raise InvalidRequest(f"tool_choice.type must be auto, any, tool or none, got {kind!r}")
    name = as_str(raw.get("name"), "tool_choice.name") if kind == "tool" else None
    parallel = False if raw.get("disable_parallel_tool_use") else None
    return ToolChoice(kind, name), parallel


def _thinking(raw: Any) -> Reasoning | None:
    if raw is None:
        return None
    raw = as_dict(raw, "thinking")
    kind = raw.get("type")
    if kind == "enabled":
        return Reasoning(budget_tokens=opt_int(raw.get("budget_tokens"), "thinking.budget_tokens"))
    if kind == "adaptive":
        return Reasoning(adaptive=True)
    if kind == "disabled":
        return None
    raise InvalidRequest(f"thinking.type must be enabled, adaptive or disabled, got {kind!r}")
