"""OpenAI Responses API request -> the neutral ChatRequest.

Open-world: an input item, content part, tool type or field this parser does not know is left
out and named in `dropped`, never refused; the real API behind a Responses backend is the judge.
"""

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
    Effort,
    FilePart,
    ImagePart,
    Message,
    Part,
    Reasoning,
    ResponseFormat,
    Role,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolChoice,
    ToolDef,
    ToolResultPart,
)
from driftgate.proxy.translate.openai_request import image_from_url

# Read here, or kept by the gateway itself (store, previous_response_id, metadata, include...).
_KNOWN = frozenset(
    {"model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "stream",
     "stream_options", "tools", "tool_choice", "parallel_tool_calls", "reasoning", "text", "user",
     "safety_identifier", "metadata", "store", "previous_response_id", "include", "truncation"}
)  # fmt: skip
_EFFORT: dict[str, Effort | None] = {
    "none": None, "minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "high",
}  # fmt: skip
# A custom tool's free-form input travels as this one string field of a function tool.
CUSTOM_INPUT = "input"
CUSTOM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {CUSTOM_INPUT: {"type": "string"}},
    "required": [CUSTOM_INPUT],
}
REDACTED_PREFIX = (
    "redacted_thinking:"  # encrypted_content of a reasoning item holding redacted data
)
_ASSISTANT_ITEMS = frozenset({"function_call", "custom_tool_call", "reasoning"})
_OUTPUT_ITEMS = frozenset({"function_call_output", "custom_tool_call_output"})


def parse_request(body: dict[str, Any]) -> ChatRequest:
    """A Responses API body as a ChatRequest; InvalidRequest only when a read field is malformed."""
    dropped = [k for k in body if k not in _KNOWN]
    system: list[TextPart] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        system.append(TextPart(instructions))
    messages: list[Message] = []
    raw_input = body.get("input")
    if isinstance(raw_input, str):
        messages.append(Message("user", (TextPart(raw_input),)))
    elif raw_input is not None:
        # Field paths such as input[0] are built only for an error message.
        for i, item in enumerate(as_list(raw_input, "input")):
            if not isinstance(item, dict):
                as_dict(item, f"input[{i}]")
            content = item.get("content")
            if (
                item.get("role") == "user"
                and isinstance(content, str)
                and item.get("type", "message") == "message"
                and content
            ):  # the common item: a user message as one string
                _add(messages, "user", [TextPart(content)])
                continue
            _item(item, f"input[{i}]", system, messages, dropped)
    raw = body.get("reasoning")
    reasoning = _reasoning(raw, dropped) if raw is not None else None
    parallel = body.get("parallel_tool_calls")
    user = body.get("user") or body.get("safety_identifier")
    tools, choice, text = body.get("tools"), body.get("tool_choice"), body.get("text")
    max_tokens, temperature, top_p = (
        body.get("max_output_tokens"), body.get("temperature"), body.get("top_p"),
    )  # fmt: skip
    response_format = _text_format(text, dropped) if text is not None else None
    # Positional, in ChatRequest's field order: keyword arguments cost twice as much here.
    return ChatRequest(
        tuple(messages),
        tuple(system),
        None if max_tokens is None else opt_int(max_tokens, "max_output_tokens"),
        None if temperature is None else opt_number(temperature, "temperature"),
        None if top_p is None else opt_number(top_p, "top_p"),
        None,  # top_k: the Responses API has none
        (),  # stop: nor stop sequences
        body.get("stream") is True,
        _tools(tools, dropped) if tools else (),
        _tool_choice(choice, dropped) if choice is not None else None,
        parallel if isinstance(parallel, bool) else None,
        reasoning,
        user if isinstance(user, str) else None,
        unique(dropped),
        response_format,
    )


def _add(messages: list[Message], role: Role, parts: list[Part]) -> None:
    """Append `parts` as a turn of `role`, joining the previous turn when it has the same role."""
    if not parts:
        return
    if messages and messages[-1].role == role:
        messages[-1] = Message(role, (*messages[-1].parts, *parts))
    else:
        messages.append(Message(role, tuple(parts)))


def _item(
    item: dict[str, Any],
    where: str,
    system: list[TextPart],
    messages: list[Message],
    dropped: list[str],
) -> None:
    kind = item.get("type")
    if kind is None or kind == "message":
        _message(item, where, system, messages, dropped)
    elif kind in _ASSISTANT_ITEMS:
        part = _assistant_item(item, kind, where)
        if part is not None:
            _add(messages, "assistant", [part])
    elif kind in _OUTPUT_ITEMS:
        content = _output(item.get("output"), f"{where}.output", dropped)
        call_id = as_str(item.get("call_id"), f"{where}.call_id")
        _add(messages, "user", [ToolResultPart(call_id, tuple(content))])
    else:
        dropped.append(f"input.{kind}")  # hosted-tool history, unresolved references, new kinds


def _message(
    item: dict[str, Any],
    where: str,
    system: list[TextPart],
    messages: list[Message],
    dropped: list[str],
) -> None:
    role = item.get("role")
    parts = _content(item.get("content"), where, dropped)
    if role in ("system", "developer"):
        texts: list[Part] = [p for p in parts if isinstance(p, TextPart)]
        if messages:  # mid-conversation: keeps its place (rendered in place or hoisted)
            _add(messages, "system", texts)
        else:
            system.extend(p for p in texts if isinstance(p, TextPart))
    elif role == "user" or role == "assistant":
        _add(messages, role, [p for p in parts if p != TextPart("")])
    else:
        dropped.append(f"input.role.{role}")


def _assistant_item(item: dict[str, Any], kind: str, where: str) -> Part | None:
    if kind == "reasoning":
        return _reasoning_part(item)
    call_id = as_str(item.get("call_id"), f"{where}.call_id")
    name = as_str(item.get("name"), f"{where}.name")
    if kind == "custom_tool_call":
        free = as_str(item.get("input", ""), f"{where}.input")
        return ToolCallPart(call_id, name, dumps({CUSTOM_INPUT: free}))
    return ToolCallPart(call_id, name, as_str(item.get("arguments", "{}"), f"{where}.arguments"))


def _reasoning_part(item: dict[str, Any]) -> ThinkingPart | None:
    """A reasoning item; None when it carries nothing (never an empty message)."""
    texts = [
        str(s.get("text", ""))
        for key in ("summary", "content")
        for s in item.get(key) or ()
        if isinstance(s, dict) and s.get("text")
    ]
    encrypted = item.get("encrypted_content")
    signature = encrypted if isinstance(encrypted, str) and encrypted else None
    if signature is not None and signature.startswith(REDACTED_PREFIX):
        return ThinkingPart("", redacted=signature[len(REDACTED_PREFIX) :])
    if not texts and signature is None:
        return None
    # Only one of summary/content is read: Anthropic checks the text against its signature.
    summary = [str(s.get("text", "")) for s in item.get("summary") or () if isinstance(s, dict)]
    text = "".join(summary) if any(summary) else "".join(texts)
    return ThinkingPart(text, signature)


def _content(raw: Any, where: str, dropped: list[str]) -> list[Part]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [TextPart(raw)]
    out: list[Part] = []
    for j, part in enumerate(as_list(raw, f"{where}.content")):
        part = as_dict(part, f"{where}.content[{j}]")
        converted = _part(part, f"{where}.content[{j}]", dropped)
        if converted is not None:
            out.append(converted)
    return out


def _part(part: dict[str, Any], where: str, dropped: list[str]) -> Part | None:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return TextPart(as_str(part.get("text"), f"{where}.text"))
    if kind == "refusal":
        return TextPart(as_str(part.get("refusal"), f"{where}.refusal"))
    if kind == "input_image":
        url = part.get("image_url")
        if isinstance(url, str) and url:
            if part.get("detail") not in (None, "auto"):
                dropped.append("input_image.detail")
            return image_from_url(url)
        dropped.append("input_image.file_id")  # files uploaded to OpenAI: no other backend has them
        return None
    if kind == "input_file":
        return _file(part, where, dropped)
    dropped.append(f"content.{kind}")
    return None


def _file(part: dict[str, Any], where: str, dropped: list[str]) -> FilePart | None:
    filename = part.get("filename") if isinstance(part.get("filename"), str) else None
    data = part.get("file_data")
    if isinstance(data, str) and data:
        if data.startswith("data:"):
            header, comma, payload = data.partition(",")
            if not (comma and header.endswith(";base64")):
                raise InvalidRequest(f"{where}.file_data: only base64 data: URLs can be translated")
            return FilePart(media_type=header[5:-7] or None, data=payload, filename=filename)
        return FilePart(media_type="application/pdf", data=data, filename=filename)
    url = part.get("file_url")
    if isinstance(url, str) and url:
        return FilePart(url=url, filename=filename)
    dropped.append("input_file.file_id")
    return None


def _output(raw: Any, where: str, dropped: list[str]) -> list[TextPart | ImagePart]:
    """A tool call's output: a string or a list of input_text / input_image parts."""
    if isinstance(raw, str):
        return [TextPart(raw)] if raw else []
    out: list[TextPart | ImagePart] = []
    for p in _content(raw, where, dropped):
        if isinstance(p, TextPart | ImagePart):
            out.append(p)
        else:
            dropped.append("function_call_output.file")
    return out


def _tools(raw: Any, dropped: list[str]) -> tuple[ToolDef, ...]:
    out: list[ToolDef] = []
    for i, tool in enumerate(as_list(raw or [], "tools")):
        tool = as_dict(tool, f"tools[{i}]")
        kind = tool.get("type")
        name = tool.get("name")
        description = tool.get("description") if isinstance(tool.get("description"), str) else None
        if kind == "function":
            params = tool.get("parameters")
            out.append(
                ToolDef(
                    as_str(name, f"tools[{i}].name"),
                    description,
                    as_dict(params, f"tools[{i}].parameters") if params is not None else {},
                )
            )
        elif kind == "custom":
            out.append(
                ToolDef(
                    as_str(name, f"tools[{i}].name"),
                    _custom_description(description, tool.get("format")),
                    CUSTOM_SCHEMA,
                )
            )
        else:
            dropped.append(f"tools.{kind}")  # hosted tools (web_search, file_search, mcp...)
    return tuple(out)


def custom_tool_names(body: dict[str, Any]) -> frozenset[str]:
    """The names of the request's custom (free-form input) tools."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return frozenset()
    return frozenset(
        t["name"]
        for t in tools
        if isinstance(t, dict) and t.get("type") == "custom" and isinstance(t.get("name"), str)
    )


def _custom_description(description: str | None, fmt: Any) -> str:
    """The tool's description, plus the grammar its input must follow (the model needs to know)."""
    head = description or "A tool that takes free-form text input."
    lines = [head, f"Put the tool's whole input, as plain text, in the `{CUSTOM_INPUT}` field."]
    if isinstance(fmt, dict) and fmt.get("type") == "grammar":
        syntax = fmt.get("syntax") or "lark"
        lines.append(f"The input must match this {syntax} grammar:\n{fmt.get('definition', '')}")
    return "\n".join(lines)


def _tool_choice(raw: Any, dropped: list[str]) -> ToolChoice | None:
    if raw is None:
        return None
    if raw in ("auto", "none"):
        return ToolChoice(raw)
    if raw == "required":
        return ToolChoice("any")
    if isinstance(raw, dict):
        kind = raw.get("type")
        if kind in ("function", "custom"):
            return ToolChoice("tool", as_str(raw.get("name"), "tool_choice.name"))
        if kind == "allowed_tools":
            dropped.append("tool_choice.allowed_tools")
            return ToolChoice("any") if raw.get("mode") == "required" else None
        dropped.append(f"tool_choice.{kind}")
        return None
    dropped.append("tool_choice")
    return None


def _reasoning(raw: Any, dropped: list[str]) -> Reasoning | None:
    if raw is None:
        return None
    raw = as_dict(raw, "reasoning")
    effort = raw.get("effort")
    if effort is None:
        return None
    if not isinstance(effort, str) or effort not in _EFFORT:
        dropped.append("reasoning.effort")
        return None
    level = _EFFORT[effort]
    return Reasoning(effort=level) if level else None


def _text_format(raw: Any, dropped: list[str]) -> ResponseFormat | None:
    if raw is None:
        return None
    raw = as_dict(raw, "text")
    if raw.get("verbosity") is not None:
        dropped.append("text.verbosity")
    fmt = raw.get("format")
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt.get("type") == "json_object":
        return ResponseFormat("json_object")
    if fmt.get("type") == "json_schema":
        schema = as_dict(fmt.get("schema"), "text.format.schema")
        name = fmt.get("name") if isinstance(fmt.get("name"), str) else None
        strict = fmt.get("strict") if isinstance(fmt.get("strict"), bool) else None
        desc = fmt.get("description") if isinstance(fmt.get("description"), str) else None
        return ResponseFormat("json_schema", name, schema, strict, desc)
    dropped.append(f"text.format.{fmt.get('type')}")
    return None
