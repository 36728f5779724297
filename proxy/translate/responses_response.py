"""OpenAI Responses API response objects <-> the neutral ChatResponse."""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

from driftgate.proxy.sse import Usage, responses_usage
from driftgate.proxy.translate.input_checks import arguments_object, dumps, list_at, obj_at
from driftgate.proxy.translate.ir import (
    ChatResponse,
    Part,
    StopReason,
    TextPart,
    ThinkingPart,
    ToolCallPart,
)
from driftgate.proxy.translate.responses_request import (
    CUSTOM_INPUT,
    REDACTED_PREFIX,
    custom_tool_names,
)

# What a Response object repeats of its request (so clients read back what they asked for).
ECHO_DEFAULTS: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None},
    "store": True,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
    "user": None,
}
# A Response object's keys in their order, with the defaults (a copy per response; the mutable
# defaults are never changed in place: `finish` and the encoders assign new values).
_SKELETON: dict[str, Any] = {
    "id": "",
    "object": "response",
    "created_at": 0,
    "status": "in_progress",
    "background": False,
    "error": None,
    "incomplete_details": None,
    "model": "",
    "output": [],
    "usage": None,
    **ECHO_DEFAULTS,
}
INCOMPLETE_REASONS: dict[StopReason, str] = {
    "length": "max_output_tokens",
    "content_filter": "content_filter",
}


_ID_PREFIX = os.urandom(8).hex()  # this process's; ids count on from it (a uuid4 cost ~2 us)
_ids = itertools.count(1)
# An id is the prefix, the process's 16 hex digits and the count's 16. Formatting the count cost
# most of an id: its last two digits come from a table, the 14 before them change once in 256
# ids. (the count >> 8, the id's text from the process's digits to those last two)
_HEX = tuple(f"{n:02x}" for n in range(256))
_high = (0, f"{_ID_PREFIX}{0:014x}")


def _new_id_prefix() -> None:
    """A forked worker's own prefix: its ids must not repeat the supervisor's or a sibling's."""
    global _ID_PREFIX, _ids, _high
    _ID_PREFIX = os.urandom(8).hex()
    _ids = itertools.count(1)
    _high = (0, f"{_ID_PREFIX}{0:014x}")


os.register_at_fork(after_in_child=_new_id_prefix)


def new_id(prefix: str) -> str:
    """A synthesised Responses-style id, unique to this process: resp_, msg_, fc_, ctc_, rs_..."""
    n = next(_ids)
    high = _high  # read once: another thread may replace it, never change it
    if high[0] != n >> 8:
        high = _count_high(n >> 8)
    return prefix + high[1] + _HEX[n & 255]


def _count_high(high: int) -> tuple[int, str]:
    global _high
    _high = (high, f"{_ID_PREFIX}{high:014x}")
    return _high


def usage_json(usage: Usage) -> dict[str, Any]:
    """A Responses `usage` object: input_tokens counts cached and cache-written tokens too."""
    prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": prompt + usage.output_tokens,
    }


def skeleton(
    response_id: str, model: str, request: dict[str, Any] | None, created: int
) -> dict[str, Any]:
    """A Response object without output: status in_progress, the request's settings echoed."""
    body = _SKELETON.copy()  # every key in its place: the request's values only replace some
    body["id"] = response_id
    body["created_at"] = created
    body["model"] = model
    body["output"] = []
    if request:
        echoed = ECHO_DEFAULTS
        for key in request:  # each echoed key is already in its place: the order stays
            if key in echoed:
                value = request[key]
                default = echoed[key]
                body[key] = default if value is None and default is not None else value
    return body


def finish(body: dict[str, Any], stop: StopReason | None, usage: Usage) -> dict[str, Any]:
    """`body` completed (or incomplete, with the reason) with its usage."""
    reason = INCOMPLETE_REASONS.get(stop) if stop else None
    body["status"] = "incomplete" if reason else "completed"
    body["incomplete_details"] = {"reason": reason} if reason else None
    body["usage"] = usage_json(usage)
    return body


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    """An assistant message output item."""
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def reasoning_item(
    item_id: str, text: str, signature: str | None, redacted: str | None = None
) -> dict[str, Any]:
    """A reasoning item; an Anthropic signature (or redacted data) travels in encrypted_content."""
    encrypted = REDACTED_PREFIX + redacted if redacted is not None else (signature or None)
    summary = [{"type": "summary_text", "text": text}] if text else []
    return {"id": item_id, "type": "reasoning", "summary": summary, "encrypted_content": encrypted}


def call_item(item_id: str, call: ToolCallPart, custom: bool) -> dict[str, Any]:
    """A function_call item, or a custom_tool_call item whose input is the one string field."""
    if custom:
        args = arguments_object(call.arguments, "response", strict=False)
        value = args.get(CUSTOM_INPUT)
        free = value if isinstance(value, str) else call.arguments
        return {"id": item_id, "type": "custom_tool_call", "status": "completed",
                "call_id": call.id, "name": call.name, "input": free}  # fmt: skip
    return {"id": item_id, "type": "function_call", "status": "completed", "call_id": call.id,
            "name": call.name, "arguments": call.arguments or "{}"}  # fmt: skip


def output_items(parts: tuple[Part, ...], custom: frozenset[str]) -> list[dict[str, Any]]:
    """The Response output for a model answer's parts, in order."""
    out: list[dict[str, Any]] = []
    texts: list[str] = []
    for p in parts:
        if isinstance(p, TextPart):
            texts.append(p.text)
            continue
        if texts:
            out.append(message_item(new_id("msg_"), "".join(texts)))
            texts = []
        if isinstance(p, ThinkingPart):
            out.append(reasoning_item(new_id("rs_"), p.text, p.signature, p.redacted))
        elif isinstance(p, ToolCallPart):
            custom_call = p.name in custom
            out.append(call_item(new_id("ctc_" if custom_call else "fc_"), p, custom_call))
    if texts:
        out.append(message_item(new_id("msg_"), "".join(texts)))
    return out


def render_response(
    resp: ChatResponse, model: str, request: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """A Response object for `resp`, answering as `model`, echoing the client's `request`."""
    created = resp.created or int(time.time())
    body = skeleton(new_id("resp_"), model, request, created)
    body["output"] = output_items(resp.parts, custom_tool_names(request or {}))
    return finish(body, resp.stop_reason, resp.usage), []


def parse_response(body: dict[str, Any]) -> ChatResponse:
    """A Response object as a ChatResponse (output items in order)."""
    parts: list[Part] = []
    for item in list_at(body, "output"):
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            for c in list_at(item, "content"):
                if isinstance(c, dict) and c.get("type") in ("output_text", "refusal"):
                    parts.append(TextPart(str(c.get("text") or c.get("refusal") or "")))
        elif kind == "function_call":
            parts.append(ToolCallPart(str(item.get("call_id", "")), str(item.get("name", "")),
                                      str(item.get("arguments") or "{}")))  # fmt: skip
        elif kind == "custom_tool_call":
            args = dumps({CUSTOM_INPUT: str(item.get("input", ""))})
            parts.append(
                ToolCallPart(str(item.get("call_id", "")), str(item.get("name", "")), args)
            )
        elif kind == "reasoning":
            text = "".join(
                str(s.get("text", "")) for s in list_at(item, "summary") if isinstance(s, dict)
            )
            enc = item.get("encrypted_content")
            parts.append(ThinkingPart(text, enc if isinstance(enc, str) else None))
    status = body.get("status")
    reason = obj_at(body, "incomplete_details").get("reason")
    stop: StopReason = "stop"
    if status == "incomplete":
        stop = "content_filter" if reason == "content_filter" else "length"
    elif any(isinstance(p, ToolCallPart) for p in parts):
        stop = "tool_calls"
    created = body.get("created_at")
    return ChatResponse(
        id=body.get("id") if isinstance(body.get("id"), str) else None,
        parts=tuple(parts),
        stop_reason=stop,
        usage=responses_usage(body.get("usage")),
        created=created if isinstance(created, int) else None,
    )
