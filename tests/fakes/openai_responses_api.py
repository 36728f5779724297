"""The OpenAI Responses API's Response object and its streamed event sequence, for a planned reply."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.fakes.reply_plan import Reply, fragments, words
from tests.fakes.scripted import sse


def usage(reply: Reply, cached_tokens: int) -> dict[str, Any]:
    """Responses usage: input_tokens includes the cached ones."""
    prompt = reply.input_tokens + cached_tokens
    reasoning = len(words(reply.thinking)) if reply.thinking else 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached_tokens},
        "output_tokens": reply.output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + reply.output_tokens,
    }


def skeleton(body: dict[str, Any], response_id: str) -> dict[str, Any]:
    """The in-progress Response, echoing the request."""
    return {
        "id": response_id, "object": "response", "created_at": 1767225600, "status": "in_progress",
        "background": False, "error": None, "incomplete_details": None,
        "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
        "model": body["model"], "output": [], "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"), "summary": None},
        "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}}, "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [], "top_p": body.get("top_p", 1.0), "truncation": "disabled",
        "usage": None, "user": None, "metadata": body.get("metadata") or {},
    }  # fmt: skip


def output(reply: Reply, response_id: str, custom: frozenset[str]) -> list[dict[str, Any]]:
    """The finished output items for `reply`."""
    items: list[dict[str, Any]] = []
    if reply.thinking:
        items.append({"id": f"rs_{response_id}", "type": "reasoning",
                      "summary": [{"type": "summary_text", "text": reply.thinking}],
                      "encrypted_content": f"enc-fake-{response_id}"})  # fmt: skip
    if reply.text or not reply.tool_calls:
        items.append({"id": f"msg_{response_id}", "type": "message", "status": "completed", "role": "assistant",
                      "content": [{"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}]})  # fmt: skip
    for k, call in enumerate(reply.tool_calls):
        if call.name in custom:
            items.append({"id": f"ctc_{k}_{response_id}", "type": "custom_tool_call", "status": "completed",
                          "call_id": call.id, "name": call.name, "input": f"patch for {call.name}"})  # fmt: skip
        else:
            items.append({"id": f"fc_{k}_{response_id}", "type": "function_call", "status": "completed",
                          "call_id": call.id, "name": call.name, "arguments": call.arguments})  # fmt: skip
    return items


def response(
    body: dict[str, Any], reply: Reply, response_id: str, cached: int, custom: frozenset[str]
) -> dict[str, Any]:
    """The non-streaming Response object."""
    out = skeleton(body, response_id)
    out["output"] = output(reply, response_id, custom)
    out["usage"] = usage(reply, cached)
    if reply.stop == "max_tokens":
        out["status"], out["incomplete_details"] = "incomplete", {"reason": "max_output_tokens"}
    else:
        out["status"] = "completed"
    return out


def events(
    body: dict[str, Any], reply: Reply, response_id: str, cached: int, custom: frozenset[str]
) -> list[bytes]:
    """The documented event sequence for `reply`, sequence numbers from 0."""
    seq = iter(range(10_000))
    final = response(body, reply, response_id, cached, custom)

    def ev(kind: str, **fields: Any) -> bytes:
        return sse(kind, {"type": kind, "sequence_number": next(seq), **fields})

    out = [ev("response.created", response=skeleton(body, response_id)),
           ev("response.in_progress", response=skeleton(body, response_id))]  # fmt: skip
    for index, item in enumerate(final["output"]):
        out.extend(_item_events(ev, index, item))
    out.append(
        ev(
            "response.incomplete" if final["status"] == "incomplete" else "response.completed",
            response=final,
        )
    )
    return out


def _item_events(ev: Any, index: int, item: dict[str, Any]) -> Iterator[bytes]:
    iid = item["id"]
    kind = item["type"]
    if kind == "message":
        text = item["content"][0]["text"]
        yield ev(
            "response.output_item.added",
            output_index=index,
            item={**item, "status": "in_progress", "content": []},
        )
        empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        yield ev(
            "response.content_part.added",
            item_id=iid,
            output_index=index,
            content_index=0,
            part=empty,
        )
        for w in words(text):
            yield ev(
                "response.output_text.delta",
                item_id=iid,
                output_index=index,
                content_index=0,
                delta=w,
                logprobs=[],
            )
        yield ev(
            "response.output_text.done",
            item_id=iid,
            output_index=index,
            content_index=0,
            text=text,
            logprobs=[],
        )
        yield ev(
            "response.content_part.done",
            item_id=iid,
            output_index=index,
            content_index=0,
            part=item["content"][0],
        )
    elif kind == "reasoning":
        text = item["summary"][0]["text"]
        yield ev("response.output_item.added", output_index=index, item={**item, "summary": []})
        part = {"type": "summary_text", "text": ""}
        yield ev(
            "response.reasoning_summary_part.added",
            item_id=iid,
            output_index=index,
            summary_index=0,
            part=part,
        )
        for w in words(text):
            yield ev(
                "response.reasoning_summary_text.delta",
                item_id=iid,
                output_index=index,
                summary_index=0,
                delta=w,
            )
        yield ev(
            "response.reasoning_summary_text.done",
            item_id=iid,
            output_index=index,
            summary_index=0,
            text=text,
        )
        yield ev("response.reasoning_summary_part.done", item_id=iid, output_index=index, summary_index=0,
                 part={"type": "summary_text", "text": text})  # fmt: skip
    elif kind == "function_call":
        yield ev(
            "response.output_item.added",
            output_index=index,
            item={**item, "arguments": "", "status": "in_progress"},
        )
        for f in fragments(item["arguments"]):
            yield ev(
                "response.function_call_arguments.delta", item_id=iid, output_index=index, delta=f
            )
        yield ev(
            "response.function_call_arguments.done",
            item_id=iid,
            output_index=index,
            arguments=item["arguments"],
        )
    else:
        yield ev(
            "response.output_item.added",
            output_index=index,
            item={**item, "input": "", "status": "in_progress"},
        )
        for f in fragments(item["input"]):
            yield ev(
                "response.custom_tool_call_input.delta", item_id=iid, output_index=index, delta=f
            )
        yield ev(
            "response.custom_tool_call_input.done",
            item_id=iid,
            output_index=index,
            input=item["input"],
        )
    yield ev("response.output_item.done", output_index=index, item=item)
