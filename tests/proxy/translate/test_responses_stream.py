"""The Responses stream encoder: the documented event order for any event sequence a decoder emits."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from driftgate.proxy.sse import SSEParser, Usage
from driftgate.proxy.translate import stream_translator
from driftgate.proxy.translate.ir import (
    ArgumentsDelta,
    BlockStart,
    BlockStop,
    StreamDone,
    StreamEnd,
    StreamError,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
)
from driftgate.proxy.translate.json_field_stream import StringFieldStream
from driftgate.proxy.translate.responses_response import finish, skeleton
from driftgate.proxy.translate.responses_stream import _DELTA_EVENT, ResponsesEncoder, _Item
from tests.fakes.responses_order import check_order

PATCH_REQUEST = {"tools": [{"type": "custom", "name": "apply_patch"}]}


def decode(raw: bytes) -> list[dict[str, Any]]:
    events = SSEParser().feed(raw)
    out = []
    for ev in events:
        body = json.loads(ev.data)
        assert ev.event == body["type"], "the event: line names the data's type"
        out.append(body)
    return out


@st.composite
def block(draw: st.DrawFn, index: int) -> list[StreamEvent]:
    kind = draw(st.sampled_from(["text", "tool_call", "custom", "thinking"]))
    name = "apply_patch" if kind == "custom" else "get_weather"
    start_kind = "tool_call" if kind == "custom" else kind
    events: list[StreamEvent] = []
    if draw(st.booleans()) or start_kind == "tool_call":  # text/thinking may come without a start
        events.append(BlockStart(index, start_kind, f"call_{index}", name))  # type: ignore[arg-type]
    pieces = draw(st.lists(st.text(max_size=8), max_size=4))
    for piece in pieces:
        if kind == "text":
            events.append(TextDelta(index, piece))
        elif kind == "thinking":
            events.append(ThinkingDelta(index, text=piece))
        else:
            events.append(ArgumentsDelta(index, json.dumps(piece)[1:-1]))
    if kind == "thinking" and draw(st.booleans()):
        events.append(ThinkingDelta(index, signature="sig"))
    if draw(st.booleans()):
        events.append(BlockStop(index))
    return events


@st.composite
def sequences(draw: st.DrawFn) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    if draw(st.booleans()):
        events.append(StreamStart("msg_1", Usage(input_tokens=5)))
    for i in range(draw(st.integers(0, 4))):
        events.extend(draw(block(i)))
    if draw(st.booleans()):
        events.append(BlockStop(99))  # a stop for a block that never started
    ending = draw(st.sampled_from(["done", "end+done", "length", "error", "cut"]))
    if ending == "end+done":
        events += [StreamEnd("stop", Usage(output_tokens=3)), StreamDone()]
    elif ending == "length":
        events += [StreamEnd("length", Usage(output_tokens=3)), StreamDone()]
    elif ending == "done":
        events.append(StreamDone())
    elif ending == "error":
        events.append(StreamError("upstream overloaded", 529))
    return events


@settings(max_examples=300, deadline=None)
@given(sequences())
def test_any_event_sequence_is_encoded_in_the_documented_order(events: list[StreamEvent]) -> None:
    enc = ResponsesEncoder("gpt-x", Usage(), False, lambda: 1.0, PATCH_REQUEST)
    raw = b"".join(enc.encode(ev) for ev in events)
    if not enc.finished:
        raw += enc.fail("upstream stream ended before its final event")
    out = decode(raw)
    check_order(out)
    last = out[-1]
    if not events or not isinstance(events[-1], StreamDone):
        assert last["type"] == "response.failed"
    elif any(isinstance(e, StreamEnd) and e.stop_reason == "length" for e in events):
        assert last["type"] == "response.incomplete"
        assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    else:
        assert last["type"] == "response.completed"


@settings(max_examples=200, deadline=None)
@given(st.text(), st.lists(st.integers(1, 7), max_size=30))
def test_custom_tool_input_decodes_from_any_fragmenting(text: str, cuts: list[int]) -> None:
    raw = orjson.dumps({"input": text}).decode()
    field = StringFieldStream("input")
    out, at = [], 0
    for n in [*cuts, len(raw)]:
        out.append(field.feed(raw[at : at + n]))
        at += n
    assert "".join(out) == text and field.done


def test_a_tool_call_only_answer_closes_only_what_it_opened() -> None:
    # OpenAI-compatible servers start a tool call with no content block at all (LiteLLM #37852).
    tr = stream_translator("openai", "responses", model="m", include_usage=False, request={})
    chunks = [
        {"id": "c1", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
        {"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                                           "function": {"name": "f", "arguments": ""}}]}}]},
        {"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}}]},
        {"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}}]},
        {"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]  # fmt: skip
    raw = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    out = decode(tr.feed(raw) + tr.finish())
    check_order(out)
    kinds = [e["type"] for e in out]
    assert "response.content_part.added" not in kinds and "response.output_text.done" not in kinds
    final = out[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["function_call"]
    assert final["output"][0]["arguments"] == '{"a":1}'


def test_anthropic_thinking_streams_as_a_reasoning_summary_with_its_signature() -> None:
    tr = stream_translator("anthropic", "responses", model="m", include_usage=False, request={})
    events = [
        ("message_start", {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 7}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "Let me see"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "signature_delta", "signature": "sig-abc"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    raw = b"".join(f"event: {n}\ndata: {json.dumps(d)}\n\n".encode() for n, d in events)
    out = decode(tr.feed(raw))
    check_order(out)
    final = out[-1]["response"]
    assert final["output"][0] == {"id": final["output"][0]["id"], "type": "reasoning",
                                  "summary": [{"type": "summary_text", "text": "Let me see"}],
                                  "encrypted_content": "sig-abc"}  # fmt: skip
    assert final["output"][1]["content"][0]["text"] == "Hi"
    assert final["usage"]["input_tokens"] == 7 and final["usage"]["output_tokens"] == 9
    assert tr.usage.output_tokens == 9


@given(st.text(), st.sampled_from(["text", "thinking", "tool_call", "custom"]))
def test_prebuilt_delta_bytes_equal_the_general_encoding(text: str, kind: str) -> None:
    enc = ResponsesEncoder("m", Usage(), False, lambda: 1.0, PATCH_REQUEST)
    item = _Item(kind, 3, "item_1")
    fast = enc._delta(item, text)
    fields: dict[str, Any] = {"item_id": "item_1", "output_index": 3}
    if kind == "text":
        fields["content_index"] = 0
    if kind == "thinking":
        fields["summary_index"] = 0
    fields["delta"] = text
    if kind == "text":
        fields["logprobs"] = []
    general = enc._ev(_DELTA_EVENT[kind], fields)
    assert decode(fast)[0] == {**decode(general)[0], "sequence_number": 0}
    assert fast.startswith(b"event: " + _DELTA_EVENT[kind].encode() + b"\ndata: {")


@given(st.text())
def test_message_item_templates_equal_the_documented_objects(text: str) -> None:
    enc = ResponsesEncoder("m", Usage(), False, lambda: 1.0, {})
    raw = (
        enc.encode(BlockStart(0, "text"))
        + enc.encode(TextDelta(0, text))
        + enc.encode(BlockStop(0))
    )
    out = decode(raw)[2:]  # after response.created and response.in_progress
    iid = out[0]["item"]["id"]
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    item = {
        "id": iid,
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [part],
    }
    where = {"item_id": iid, "output_index": 0, "content_index": 0}
    expected = [
        {"type": "response.output_item.added", "output_index": 0,
         "item": {**item, "status": "in_progress", "content": []}},
        {"type": "response.content_part.added", **where, "part": {**part, "text": ""}},
        *([{"type": "response.output_text.delta", **where, "delta": text, "logprobs": []}] if text else []),
        {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
    ]  # fmt: skip
    assert [{k: v for k, v in e.items() if k != "sequence_number"} for e in out] == expected
    assert [e["sequence_number"] for e in out] == list(range(2, 2 + len(out)))
    assert enc.output == [item]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)
echoed_keys = st.sampled_from(sorted(skeleton("r", "m", None, 0)))
requests = st.dictionaries(echoed_keys | st.text(), json_values, max_size=6)
counts = st.integers(0, 2**40)


@settings(max_examples=200, deadline=None)
@given(requests, st.text(), st.lists(st.text(), max_size=3), st.sampled_from([None, "stop", "length", "content_filter", "tool_calls"]),
       st.builds(Usage, counts, counts, counts, counts, counts), st.booleans(), st.booleans())  # fmt: skip
def test_the_response_object_is_written_as_orjson_writes_it(
    request: dict[str, Any],
    model: str,
    texts: list[str],
    stop: Any,
    usage: Usage,
    with_tool: bool,
    unstored: bool,
) -> None:
    """The Response object in response.created and the final event equals orjson's writing of
    the object the non-streamed path builds, and the dict a stored turn keeps is that object, for
    a turn that is to be stored and one that is not."""
    if unstored:
        request = {**request, "store": False}
    elif request.get("store") is False:
        request = {**request, "store": None}  # the default: stored
    shared = Usage()
    enc = ResponsesEncoder(model, shared, False, lambda: 7.0, request)
    raw = enc.encode(StreamStart(None, Usage()))
    events = [BlockStart(0, "text"), *(TextDelta(0, t) for t in texts), BlockStop(0)]
    if with_tool:
        events += [BlockStart(1, "tool_call", "call_1", "f"), ArgumentsDelta(1, '{"a":1}')]
    shared.merge(usage)
    for ev in [*events, StreamEnd(stop, usage), StreamDone()]:
        raw += enc.encode(ev)
    blocks = [ev.data.encode() for ev in SSEParser().feed(raw)]
    expected = skeleton(enc.response_id, model, request, 7)
    assert blocks[0] == b'{"type":"response.created","sequence_number":0,"response":%b}' % (
        orjson.dumps(expected)
    )
    assert enc.succeeded
    finished = enc.response
    assert finished["output"] == enc.output and len(enc.output) == 1 + with_tool
    assert finished["output"][0]["content"][0]["text"] == "".join(texts)
    kind = "response.incomplete" if finished["status"] == "incomplete" else "response.completed"
    body = orjson.dumps(finish({**expected, "output": enc.output}, stop, shared))
    assert blocks[-1] == b'{"type":"%b","sequence_number":%d,"response":%b}' % (
        kind.encode(),
        len(blocks) - 1,
        body,
    )
    assert orjson.loads(body) == finished
