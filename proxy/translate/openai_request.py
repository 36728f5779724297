"""OpenAI Chat Completions request -> the neutral ChatRequest."""

from __future__ import annotations

from typing import Any

from driftgate.proxy.errors import InvalidRequest
from driftgate.proxy.translate.input_checks import (
    as_dict,
    as_list,
    as_str,
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
    {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop",
     "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls", "reasoning_effort",
     "user", "n"}
)  # fmt: skip
_MESSAGE_KEYS = frozenset(
    {"role", "content", "name", "tool_calls", "tool_call_id", "refusal", "reasoning_content",
     "function_call"}
)  # fmt: skip
_PART_KEYS = {
    "text": frozenset({"type", "text"}),
    "image_url": frozenset({"type", "image_url"}),
    "refusal": frozenset({"type", "refusal"}),
}
_FUNCTION_KEYS = frozenset({"name", "description", "parameters", "strict"})
_EFFORT: dict[str, Effort | None] = {
    "none": None, "minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "high",
}  # fmt: skip


def parse_request(body: dict[str, Any]) -> ChatRequest:
    """An OpenAI Chat Completions body as a ChatRequest; InvalidRequest when malformed.

    Open-world: a role, part type or field with no meaning in the IR is left out and named in
    `dropped`, never refused; only a known field of the wrong shape (or n > 1) is an error.
    """
    n = body.get("n")
    if n not in (None, 1):
        raise InvalidRequest(
            "n > 1 (several choices) cannot be translated: Anthropic returns one message"
        )
    dropped = [k for k in body if k not in _KNOWN]
    system: list[TextPart] = []
    messages: list[Message] = []
    # Field paths such as messages[0] are built only for an error message.
    for i, raw in enumerate(as_list(body.get("messages"), "messages")):
        if not isinstance(raw, dict):
            as_dict(raw, f"messages[{i}]")
        _message(raw, i, system, messages, dropped)
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else as_list(stop, "stop") if stop else ()
    max_tokens, limit_name = body.get("max_completion_tokens"), "max_completion_tokens"
    if max_tokens is None:
        max_tokens, limit_name = body.get("max_tokens"), "max_tokens"
    raw_choice = body.get("tool_choice")
    choice = _tool_choice(raw_choice, dropped) if raw_choice is not None else None
    parallel = body.get("parallel_tool_calls")
    effort = body.get("reasoning_effort")
    level = None
    if effort is not None:
        if isinstance(effort, str) and effort in _EFFORT:
            level = _EFFORT[effort]
        else:
            dropped.append("reasoning_effort")  # a level newer than this gateway
    temperature, top_p, user = body.get("temperature"), body.get("top_p"), body.get("user")
    # Positional, in ChatRequest's field order: keyword arguments cost twice as much here.
    return ChatRequest(
        tuple(messages),
        tuple(system),
        None if max_tokens is None else opt_int(max_tokens, limit_name),
        None if temperature is None else opt_number(temperature, "temperature"),
        None if top_p is None else opt_number(top_p, "top_p"),
        None,  # top_k: Chat Completions has none
        tuple([as_str(s, "stop[]") for s in stops]) if stops else (),
        False,  # stream: the intake's decision, set by translate_request
        _tools(body["tools"], dropped) if body.get("tools") else (),
        choice,
        parallel if isinstance(parallel, bool) else None,
        Reasoning(effort=level) if level else None,
        user if isinstance(user, str) else None,
        unique(dropped) if dropped else (),
    )


def _message(
    raw: dict[str, Any], i: int, system: list[TextPart], out: list[Message], dropped: list[str]
) -> None:
    role = raw.get("role")
    if len(raw) > 2:
        if "name" in raw:
            dropped.append("messages.name")
        dropped.extend(f"messages.{k}" for k in raw if k not in _MESSAGE_KEYS)
    content = raw.get("content")
    if role == "user" and isinstance(content, str):  # the common turn: one string
        out.append(Message("user", (TextPart(content),)))
        return
    where = f"messages[{i}]"
    if role == "system" or role == "developer":
        if isinstance(content, str):
            texts = [TextPart(content)]
        else:
            texts = [p for p in _content(content, where, dropped) if type(p) is TextPart]
        if not out:
            system.extend(texts)  # the leading instructions: the system prompt
        elif texts:
            out.append(Message("system", tuple(texts)))  # mid-conversation: kept in place
        return
    if role == "user":
        parts = _content(content, where, dropped)
        if parts or content in (None, "", []):
            out.append(Message("user", tuple(parts)))
        return
    if role == "tool":
        results = [p for p in _content(content, where, dropped) if p != TextPart("")]
        result = ToolResultPart(
            as_str(raw.get("tool_call_id"), f"{where}.tool_call_id"), tuple(results)
        )
        if (
            out
            and out[-1].role == "user"
            and all(isinstance(p, ToolResultPart) for p in out[-1].parts)
        ):
            out[-1] = Message("user", (*out[-1].parts, result))  # several results, one turn
        else:
            out.append(Message("user", (result,)))
        return
    if role == "assistant":
        parts_ = _assistant_parts(raw, where, dropped)
        if parts_ or not raw.get("content"):
            out.append(Message("assistant", parts_))
        return
    dropped.append(f"messages.role.{role}")  # e.g. the legacy "function": no mapping


def _assistant_parts(raw: dict[str, Any], where: str, dropped: list[str]) -> tuple[Part, ...]:
    parts: list[Part] = []
    if raw.get("reasoning_content"):
        parts.append(ThinkingPart(str(raw["reasoning_content"])))
    # Clients often send content "" beside tool_calls; Anthropic rejects empty text blocks.
    parts.extend(p for p in _content(raw.get("content"), where, dropped) if p != TextPart(""))
    if isinstance(raw.get("refusal"), str) and raw["refusal"]:
        parts.append(TextPart(raw["refusal"]))
    if raw.get("function_call") is not None:
        dropped.append("function_call")
    for k, call in enumerate(as_list(raw.get("tool_calls") or [], f"{where}.tool_calls")):
        call = as_dict(call, f"{where}.tool_calls[{k}]")
        fn = as_dict(call.get("function"), f"{where}.tool_calls[{k}].function")
        parts.append(
            ToolCallPart(
                id=as_str(call.get("id"), f"{where}.tool_calls[{k}].id"),
                name=as_str(fn.get("name"), f"{where}.tool_calls[{k}].function.name"),
                arguments=as_str(
                    fn.get("arguments", "{}"), f"{where}.tool_calls[{k}].function.arguments"
                ),
            )
        )
    return tuple(parts)


def _content(raw: Any, where: str, dropped: list[str]) -> list[TextPart | ImagePart]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [TextPart(raw)]
    out: list[TextPart | ImagePart] = []
    for j, part in enumerate(as_list(raw, f"{where}.content")):
        part = as_dict(part, f"{where}.content[{j}]")
        kind = part.get("type")
        known = _PART_KEYS.get(kind) if isinstance(kind, str) else None
        if known is None:
            dropped.append(f"content.{kind}")  # audio, files...: no mapping here
            continue
        if len(part) > 2:
            dropped.extend(f"{kind}.{k}" for k in part if k not in known)
        if kind == "text":
            out.append(TextPart(as_str(part.get("text"), f"{where}.content[{j}].text")))
        elif kind == "image_url":
            image = as_dict(part.get("image_url"), f"{where}.content[{j}].image_url")
            if image.get("detail") not in (None, "auto"):
                dropped.append("image_url.detail")
            url = as_str(image.get("url"), f"{where}.content[{j}].image_url.url")
            converted = image_from_url(url)
            if converted is None:
                dropped.append("image_url.data")
            else:
                out.append(converted)
        else:
            out.append(TextPart(as_str(part.get("refusal"), f"{where}.content[{j}].refusal")))
    return out


def image_from_url(url: str) -> ImagePart | None:
    """An image from an OpenAI image URL: `data:<type>;base64,<data>` becomes inline data.

    None for a data: URL that is not base64 (Anthropic takes base64 or a fetchable URL only).
    """
    if url.startswith("data:"):
        header, comma, data = url.partition(",")
        if comma and header.endswith(";base64"):
            return ImagePart(media_type=header[5:-7] or None, data=data)
        return None
    return ImagePart(url=url)


def _tools(raw: Any, dropped: list[str]) -> tuple[ToolDef, ...]:
    out = []
    for i, tool in enumerate(as_list(raw or [], "tools")):
        tool = as_dict(tool, f"tools[{i}]")
        if tool.get("type") != "function":
            dropped.append(f"tools.{tool.get('type')}")
            continue
        if len(tool) > 2:
            dropped.extend(f"tools.{k}" for k in tool if k != "type" and k != "function")
        fn = as_dict(tool.get("function"), f"tools[{i}].function")
        if fn.get("strict"):
            dropped.append("tools.function.strict")
        dropped.extend(f"tools.function.{k}" for k in fn if k not in _FUNCTION_KEYS)
        params = fn.get("parameters")
        out.append(
            ToolDef(
                name=as_str(fn.get("name"), f"tools[{i}].function.name"),
                description=fn["description"] if isinstance(fn.get("description"), str) else None,
                parameters=as_dict(params, f"tools[{i}].function.parameters")
                if params is not None
                else {},
            )
        )
    return tuple(out)


def _tool_choice(raw: Any, dropped: list[str]) -> ToolChoice | None:
    if raw is None:
        return None
    if raw in ("auto", "none"):
        return ToolChoice(raw)
    if raw == "required":
        return ToolChoice("any")
    if isinstance(raw, dict) and raw.get("type") == "function":
        fn = as_dict(raw.get("function"), "tool_choice.function")
        return ToolChoice("tool", as_str(fn.get("name"), "tool_choice.function.name"))
    if isinstance(raw, dict) and raw.get("type") != "function":
        dropped.append(f"tool_choice.{raw.get('type')}")  # allowed_tools, custom...
        return None
    if isinstance(raw, str):
        dropped.append(f"tool_choice.{raw}")
        return None
    raise InvalidRequest(f"tool_choice must be a string or an object, got {raw!r}")
