"""Anthropic Messages request -> the neutral ChatRequest."""

from __future__ import annotations

from typing import Any

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
    Effort,
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
     "stop_sequences", "stream", "tools", "tool_choice", "thinking", "metadata", "output_config"}
)  # fmt: skip
# Assistant history from Anthropic-hosted tools: meaningless to any other backend.
_SERVER_BLOCKS = frozenset(
    {"server_tool_use", "web_search_tool_result", "web_fetch_tool_result",
     "code_execution_tool_result", "bash_code_execution_tool_result",
     "text_editor_code_execution_tool_result", "mcp_tool_use", "mcp_tool_result",
     "container_upload"}
)  # fmt: skip
# The keys each block type is read for; any other key is named in x-driftgate-dropped.
_BLOCK_KEYS = {
    "text": frozenset({"type", "text", "cache_control", "citations"}),
    "image": frozenset({"type", "source", "cache_control"}),
    "tool_use": frozenset({"type", "id", "name", "input", "cache_control"}),
    "tool_result": frozenset({"type", "tool_use_id", "content", "is_error", "cache_control"}),
    "thinking": frozenset({"type", "thinking", "signature"}),
    "redacted_thinking": frozenset({"type", "data"}),
}
_NO_CHOICE: tuple[None, None] = (None, None)
_TOOL_KEYS = frozenset({"name", "description", "input_schema", "type", "cache_control"})
_EFFORT: dict[str, Effort] = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}  # fmt: skip


def parse_request(body: dict[str, Any]) -> ChatRequest:
    """An Anthropic Messages request body as a ChatRequest; InvalidRequest when malformed.

    Open-world: a role, block type or field with no meaning in the IR is left out and named in
    `dropped`, never refused; only a known field of the wrong shape is an error.
    """
    dropped = [k for k in body if k not in _KNOWN]
    # A loop with the field paths built only when needed: ~1 us of a 4 us parse went on them.
    messages = []
    for i, m in enumerate(as_list(body.get("messages"), "messages")):
        message = _message(m, i, dropped)
        if message is not None:
            messages.append(message)
    raw_system = body.get("system")
    if isinstance(raw_system, str):
        system: tuple[TextPart, ...] = (TextPart(raw_system),) if raw_system else ()
    else:
        system = _system(raw_system, "system", dropped)
    raw_tools, raw_choice = body.get("tools"), body.get("tool_choice")
    tools = _tools(raw_tools, dropped) if raw_tools is not None else ()
    choice, parallel = _tool_choice(raw_choice, dropped) if raw_choice is not None else _NO_CHOICE
    user = None
    if body.get("metadata") is not None:
        metadata = as_dict(body["metadata"], "metadata")
        user = metadata.get("user_id") if isinstance(metadata.get("user_id"), str) else None
        dropped += [f"metadata.{k}" for k in metadata if k != "user_id"]
    stop = body.get("stop_sequences")
    thinking = body.get("thinking")
    reasoning = _thinking(thinking, dropped) if thinking is not None else None
    if body.get("output_config") is not None:
        reasoning = _output_config(
            as_dict(body["output_config"], "output_config"), reasoning, dropped
        )
    get = body.get
    max_tokens, temperature, top_p, top_k = (
        get("max_tokens"), get("temperature"), get("top_p"), get("top_k"),
    )  # fmt: skip
    # Positional, in ChatRequest's field order: keyword arguments cost twice as much here.
    return ChatRequest(
        tuple(messages),
        system,
        None if max_tokens is None else opt_int(max_tokens, "max_tokens"),
        None if temperature is None else opt_number(temperature, "temperature"),
        None if top_p is None else opt_number(top_p, "top_p"),
        None if top_k is None else opt_int(top_k, "top_k"),
        tuple([as_str(s, "stop_sequences[]") for s in as_list(stop, "stop_sequences")])
        if stop
        else (),
        False,  # stream: the intake's decision, set by translate_request
        tools,
        choice,
        parallel,
        reasoning,
        user,
        unique(dropped) if dropped else (),
    )


def _system(raw: Any, where: str, dropped: list[str]) -> tuple[TextPart, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (TextPart(raw),) if raw else ()
    out = []
    for i, block in enumerate(as_list(raw, where)):
        block = as_dict(block, f"{where}[{i}]")
        kind = block.get("type")
        if kind != "text":
            dropped.append(f"system.{kind}")  # OpenAI system messages hold text only
            continue
        if len(block) > 2:
            if "cache_control" in block:
                dropped.append("cache_control")
            _extra_keys(block, "text", dropped)
        out.append(TextPart(as_str(block.get("text"), f"{where}[{i}].text")))
    return tuple(out)


def _message(raw: Any, i: int, dropped: list[str]) -> Message | None:
    if not isinstance(raw, dict):
        as_dict(raw, f"messages[{i}]")
    role = raw.get("role")
    if len(raw) > 2:
        dropped.extend(f"messages.{k}" for k in raw if k != "role" and k != "content")
    content = raw.get("content")
    if role == "system":
        # Mid-conversation instructions (Claude Code's environment block): kept at their position.
        parts = _system(content, f"messages[{i}].content", dropped)
        return Message("system", parts) if parts else None
    if role != "user" and role != "assistant":
        dropped.append(f"messages.role.{role}")
        return None
    if isinstance(content, str):
        return Message(role, (TextPart(content),))
    where = f"messages[{i}]"
    parts_: list[Part] = []
    blocks = as_list(content, f"{where}.content")
    for j, block in enumerate(blocks):
        part = _block(as_dict(block, f"{where}.content[{j}]"), f"{where}.content[{j}]", dropped)
        if part is not None:
            parts_.append(part)
    if blocks and not parts_:
        return None  # every block was dropped: an empty turn would be refused upstream
    return Message(role, tuple(parts_))


def _extra_keys(block: dict[str, Any], kind: str, dropped: list[str]) -> None:
    known = _BLOCK_KEYS[kind]
    for key in block:
        if key not in known:
            dropped.append(f"{kind}.{key}")


def _block(block: dict[str, Any], where: str, dropped: list[str]) -> Part | None:
    kind = block.get("type")
    if "cache_control" in block:
        dropped.append("cache_control")
    if kind == "text":
        if len(block) > 2:
            if block.get("citations"):
                dropped.append("citations")
            _extra_keys(block, kind, dropped)
        return TextPart(as_str(block.get("text"), f"{where}.text"))
    if kind in _SERVER_BLOCKS or kind not in _BLOCK_KEYS:
        dropped.append(f"content.{kind}")
        return None
    if len(block) > 2:
        _extra_keys(block, kind, dropped)
    if kind == "image":
        return _image(as_dict(block.get("source"), f"{where}.source"), where, dropped)
    if kind == "tool_use":
        return ToolCallPart(
            id=as_str(block.get("id"), f"{where}.id"),
            name=as_str(block.get("name"), f"{where}.name"),
            arguments=dumps(as_dict(block.get("input", {}), f"{where}.input")),
        )
    if kind == "tool_result":
        return _tool_result(block, where, dropped)
    if kind == "thinking":
        return ThinkingPart(
            as_str(block.get("thinking", ""), f"{where}.thinking"), block.get("signature")
        )
    return ThinkingPart("", redacted=as_str(block.get("data"), f"{where}.data"))


def _image(source: dict[str, Any], where: str, dropped: list[str]) -> ImagePart | None:
    kind = source.get("type")
    if kind == "base64":
        return ImagePart(
            media_type=as_str(source.get("media_type"), f"{where}.source.media_type"),
            data=as_str(source.get("data"), f"{where}.source.data"),
        )
    if kind == "url":
        return ImagePart(url=as_str(source.get("url"), f"{where}.source.url"))
    dropped.append(f"image.source.{kind}")  # a Files API id means nothing to another backend
    return None


def _tool_result(block: dict[str, Any], where: str, dropped: list[str]) -> ToolResultPart:
    raw = block.get("content")
    content: list[TextPart | ImagePart] = []
    if isinstance(raw, str):
        content.append(TextPart(raw))
    elif raw is not None:
        for k, item in enumerate(as_list(raw, f"{where}.content")):
            item = as_dict(item, f"{where}.content[{k}]")
            kind = item.get("type")
            if kind == "text":
                content.append(TextPart(as_str(item.get("text"), f"{where}.content[{k}].text")))
            elif kind == "image":
                image = _image(as_dict(item.get("source"), f"{where}.source"), where, dropped)
                if image is not None:
                    content.append(image)
            else:
                dropped.append(f"tool_result.{kind}")
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
        dropped.extend(f"tools.{k}" for k in tool if k not in _TOOL_KEYS)
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


def _tool_choice(raw: Any, dropped: list[str]) -> tuple[ToolChoice | None, bool | None]:
    if raw is None:
        return None, None
    raw = as_dict(raw, "tool_choice")
    kind = raw.get("type")
    if kind not in ("auto", "any", "none", "tool"):
        dropped.append(f"tool_choice.{kind}")
        return None, None
    name = as_str(raw.get("name"), "tool_choice.name") if kind == "tool" else None
    parallel = False if raw.get("disable_parallel_tool_use") else None
    return ToolChoice(kind, name), parallel


def _thinking(raw: Any, dropped: list[str]) -> Reasoning | None:
    if raw is None:
        return None
    raw = as_dict(raw, "thinking")
    kind = raw.get("type")
    # `display` and the like shape what the client is shown; no other dialect has them.
    dropped.extend(f"thinking.{k}" for k in raw if k != "type" and k != "budget_tokens")
    if kind == "enabled":
        return Reasoning(budget_tokens=opt_int(raw.get("budget_tokens"), "thinking.budget_tokens"))
    if kind == "adaptive":
        return Reasoning(adaptive=True)
    if kind != "disabled":
        dropped.append(f"thinking.{kind}")
    return None


def _output_config(
    raw: dict[str, Any], reasoning: Reasoning | None, dropped: list[str]
) -> Reasoning | None:
    """`output_config.effort` sets how hard the model thinks: the OpenAI reasoning effort."""
    dropped.extend(f"output_config.{k}" for k in raw if k != "effort")
    effort = raw.get("effort")
    if effort is None:
        return reasoning
    level = _EFFORT.get(effort) if isinstance(effort, str) else None
    if level is None or reasoning is None:
        dropped.append("output_config.effort")  # unknown, or asked of a request without thinking
        return reasoning
    reasoning.effort = level
    return reasoning
