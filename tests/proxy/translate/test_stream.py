"""Streams across dialects, read back with the official SDKs."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftgate.proxy.errors import Dialect
from driftgate.proxy.sse import Usage, encode_event
from driftgate.proxy.translate import StreamTranslator, stream_translator
from driftgate.proxy.translate.anthropic_stream import AnthropicEncoder
from driftgate.proxy.translate.ir import StreamStart, TextDelta
from driftgate.proxy.translate.openai_stream import OpenAIEncoder
from tests.proxy.translate.sdk_readers import read_anthropic, read_openai
from tests.proxy.translate.sse_samples import (
    anthropic_text_stream,
    anthropic_tool_stream,
    openai_text_stream,
    openai_tool_stream,
)


def make(source: Dialect, target: Dialect, include_usage: bool = True) -> StreamTranslator:
    return stream_translator(
        source, target, model="client-model", include_usage=include_usage, clock=lambda: 1.7e9
    )


def run(t: StreamTranslator, data: bytes, seed: int | None = None) -> bytes:
    """Feed `data` whole, or in random chunk sizes (1..64 bytes) when `seed` is given, then EOF."""
    if seed is None:
        return t.feed(data) + t.finish()
    rng = random.Random(seed)
    out, pos = b"", 0
    while pos < len(data):
        step = rng.randint(1, 64)
        out += t.feed(data[pos : pos + step])
        pos += step
    return out + t.finish()


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
def test_anthropic_text_to_openai(seed: int | None) -> None:
    t = make("anthropic", "openai")
    read = read_openai(run(t, anthropic_text_stream(), seed))
    assert read.completion is not None and read.done_count == 1 and read.after_done == 0
    choice = read.completion.choices[0]
    assert choice.message.content == "Hello, world — ✓"
    assert choice.finish_reason == "stop"
    assert read.completion.model == "client-model" and read.completion.id == "msg_01ABC"
    usage = read.chunks[-1].usage
    assert read.chunks[-1].choices == [] and usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (132, 15, 147)
    assert (
        usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 100
    )
    assert all(c.usage is None for c in read.chunks[:-1])
    assert t.done and t.usage == Usage(25, 15, 100, 7)


def test_without_include_usage_there_is_no_usage_chunk() -> None:
    data = run(make("anthropic", "openai", include_usage=False), anthropic_text_stream())
    read = read_openai(data)
    assert all(c.choices for c in read.chunks)
    assert b'"usage"' not in data


@pytest.mark.parametrize("seed", [None, 4, 5])
def test_anthropic_parallel_tool_calls_to_openai(seed: int | None) -> None:
    read = read_openai(run(make("anthropic", "openai"), anthropic_tool_stream(), seed))
    assert read.completion is not None
    choice = read.completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking both."  # the thinking block is not shown
    calls = [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in choice.message.model_dump()["tool_calls"]
    ]
    assert calls == [
        ("toolu_01A", "get_weather", {"city": "Paris", "unit": "c"}),
        ("toolu_01B", "get_time", {"tz": "Europe/Paris"}),
    ]


@pytest.mark.parametrize("seed", [None, 6, 7])
def test_openai_text_to_anthropic(seed: int | None) -> None:
    t = make("openai", "anthropic")
    read = read_anthropic(run(t, openai_text_stream(), seed))
    assert read.error is None and read.message is not None
    assert read.events[0] == "message_start" and read.events[-1] == "message_stop"
    assert read.message.content[0].text == "Hello ✓!"  # type: ignore[union-attr]
    assert read.message.stop_reason == "end_turn" and read.message.model == "client-model"
    assert read.message.usage.input_tokens == 176
    assert read.message.usage.cache_read_input_tokens == 1024
    assert read.message.usage.output_tokens == 40
    assert t.usage == Usage(176, 40, 1024, 0)


@pytest.mark.parametrize("seed", [None, 8, 9])
def test_openai_parallel_tool_calls_to_anthropic(seed: int | None) -> None:
    read = read_anthropic(run(make("openai", "anthropic"), openai_tool_stream(), seed))
    assert read.message is not None and read.message.stop_reason == "tool_use"
    blocks = [b.model_dump(exclude_none=True) for b in read.message.content]
    assert blocks[1:] == [
        {"type": "tool_use", "id": "call_A1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_B2", "name": "get_time", "input": {"tz": "UTC"}},
    ]
    assert blocks[0] == {"type": "text", "text": "Let me check."}
    assert read.events.count("content_block_start") == read.events.count("content_block_stop") == 3


def test_openai_upstream_without_usage_chunk_still_gives_a_valid_anthropic_stream() -> None:
    read = read_anthropic(run(make("openai", "anthropic"), openai_text_stream(with_usage=False)))
    assert read.message is not None and read.message.usage.output_tokens == 0
    assert read.events[-1] == "message_stop"


@pytest.mark.parametrize(
    ("source", "sample"), [("anthropic", anthropic_tool_stream), ("openai", openai_tool_stream)]
)
def test_truncated_stream_ends_with_one_error_event(
    source: Dialect, sample: Callable[[], bytes]
) -> None:
    data = sample()
    target: Dialect = "openai" if source == "anthropic" else "anthropic"
    t = make(source, target)
    out = run(t, data[: len(data) * 2 // 3])
    assert t.done
    if target == "openai":
        read = read_openai(out)
        assert read.error is not None and "ended before" in read.error["message"]
        assert read.done_count == 1 and read.after_done == 0
    else:
        read_a = read_anthropic(out)
        assert read_a.error is not None and read_a.error["type"] == "api_error"
        assert read_a.events[-1] == "error" and "message_stop" not in read_a.events
    assert t.finish() == b"" and t.fail("again") == b"" and t.feed(data) == b""


@pytest.mark.parametrize("target", ["anthropic", "openai"])
def test_fail_mid_stream_gives_error_in_client_dialect(target: Dialect) -> None:
    source: Dialect = "openai" if target == "anthropic" else "anthropic"
    data = openai_text_stream() if source == "openai" else anthropic_text_stream()
    t = make(source, target)
    out = t.feed(data[:200]) + t.fail("upstream connection reset")
    if target == "anthropic":
        assert read_anthropic(out).error == {
            "type": "api_error",
            "message": "upstream connection reset",
        }
    else:
        read = read_openai(out)
        assert read.error is not None and read.error["message"] == "upstream connection reset"
        assert read.done_count == 1
    assert t.done and t.finish() == b""


def test_upstream_error_event_is_mapped_once() -> None:
    err = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    data = anthropic_text_stream()
    cut = data.index(b"event: content_block_stop")
    t = make("anthropic", "openai")
    read = read_openai(run(t, data[:cut] + err))
    assert read.error == {
        "message": "Overloaded",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    assert read.done_count == 1
    assert (
        read.completion is not None
        and read.completion.choices[0].message.content == "Hello, world — ✓"
    )


def test_openai_error_chunk_becomes_anthropic_error_event() -> None:
    t = make("openai", "anthropic")
    out = run(t, b'data: {"error": {"message": "Rate limit", "type": "rate_limit_exceeded"}}\n\n')
    read = read_anthropic(out)
    assert read.error == {"type": "rate_limit_error", "message": "Rate limit"}
    assert read.events == ["error"]


@pytest.mark.parametrize("target", ["anthropic", "openai"])
def test_malformed_upstream_json_ends_the_stream_with_an_error(target: Dialect) -> None:
    source: Dialect = "openai" if target == "anthropic" else "anthropic"
    data = openai_text_stream() if source == "openai" else anthropic_text_stream()
    first_event_end = data.index(b"\n\n") + 2
    t = make(source, target)
    out = t.feed(data[:first_event_end] + b"data: {broken\n\n" + data[first_event_end:])
    assert t.done and b"not a JSON object" in out
    assert t.finish() == b""
    if target == "openai":
        assert read_openai(out).done_count == 1
    else:
        assert read_anthropic(out).events[-1] == "error"


def test_crlf_upstream_and_keepalive_comments() -> None:
    data = b": keep-alive\r\n\r\n" + openai_text_stream().replace(b"\n", b"\r\n")
    read = read_anthropic(run(make("openai", "anthropic"), data, seed=11))
    assert read.message is not None and read.message.content[0].text == "Hello ✓!"  # type: ignore[union-attr]


def test_openai_stream_without_done_but_with_final_line_missing_blank_is_flushed() -> None:
    data = openai_text_stream().rstrip(b"\n")  # upstream closed right after "data: [DONE]"
    read = read_anthropic(run(make("openai", "anthropic"), data))
    assert read.error is None and read.events[-1] == "message_stop"


def test_openai_compatible_reasoning_stream_becomes_a_thinking_block() -> None:
    chunks = [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "Think "},
        {"reasoning_content": "hard."},
        {"content": "Answer."},
    ]
    data = b"".join(
        b"data: "
        + json.dumps({"id": "chatcmpl-r", "choices": [{"index": 0, "delta": d}]}).encode()
        + b"\n\n"
        for d in chunks
    )
    data += b'data: {"id":"chatcmpl-r","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    read = read_anthropic(run(make("openai", "anthropic"), data, seed=3))
    assert read.message is not None
    assert [b.model_dump(exclude_none=True) for b in read.message.content] == [
        {"type": "thinking", "thinking": "Think hard.", "signature": ""},
        {"type": "text", "text": "Answer."},
    ]
    # and the reverse: thinking never reaches an OpenAI client
    out = run(make("anthropic", "openai"), anthropic_tool_stream())
    assert b"I should look" not in out and b"EqQBCgIYAh" not in out


def test_tool_call_without_input_fragments_gets_empty_object_arguments() -> None:
    events = [
        ("message_start", {"type": "message_start", "message": {"id": "msg_n", "type": "message", "role": "assistant",
         "content": [], "model": "c", "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "toolu_n", "name": "now", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 5}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    data = b"".join(f"event: {n}\ndata: {json.dumps(b)}\n\n".encode() for n, b in events)
    read = read_openai(run(make("anthropic", "openai"), data))
    assert read.completion is not None
    calls = read.completion.choices[0].message.model_dump()["tool_calls"]
    assert [(c["id"], c["function"]["arguments"]) for c in calls] == [("toolu_n", "{}")]


@settings(max_examples=200, deadline=None)
@given(st.text(), st.integers(0, 12), st.booleans())
def test_text_delta_fast_path_writes_what_the_general_path_would(
    text: str, index: int, include_usage: bool
) -> None:
    """Text deltas are put together from prebuilt bytes: they must equal orjson's whole object."""
    anthropic = AnthropicEncoder("m", Usage())
    anthropic.encode(StreamStart("msg_1", Usage()))
    expected = {"type": "content_block_delta", "index": index,
                "delta": {"type": "text_delta", "text": text}}  # fmt: skip
    assert anthropic.encode(TextDelta(index, text)) == encode_event(
        orjson.dumps(expected), "content_block_delta"
    )
    openai = OpenAIEncoder('m"odel', Usage(), include_usage, lambda: 7.0)
    openai.encode(StreamStart('chatcmpl-"1', Usage()))
    chunk: dict[str, object] = {
        "id": 'chatcmpl-"1', "object": "chat.completion.chunk", "created": 7, "model": 'm"odel',
        "choices": [{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}],
    }  # fmt: skip
    if include_usage:
        chunk["usage"] = None
    assert openai.encode(TextDelta(0, text)) == encode_event(orjson.dumps(chunk))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(min_size=1), min_size=1, max_size=4).map(tuple))
def test_text_deltas_in_the_apis_compact_layout_translate_like_any_other(
    parts: tuple[str, ...],
) -> None:
    """Compact text deltas are read without parsing the object; the answer must not change."""

    def translate(data: bytes) -> bytes:
        t = stream_translator(
            "anthropic", "openai", model="m", include_usage=True, clock=lambda: 1.0
        )
        return t.feed(data) + t.finish()

    compact = translate(anthropic_text_stream(parts, compact=True))
    assert compact == translate(anthropic_text_stream(parts))
    completion = read_openai(compact).completion
    assert completion is not None and completion.choices[0].message.content == "".join(parts)


def test_a_compact_delta_with_a_trailing_field_takes_the_general_path() -> None:
    odd = anthropic_text_stream(("a",), compact=True).replace(
        b'"text":"a"}}', b'"text":"a"},"x":{"text":"b"}}'
    )
    t = stream_translator("anthropic", "openai", model="m", include_usage=False)
    completion = read_openai(t.feed(odd) + t.finish()).completion
    assert completion is not None and completion.choices[0].message.content == "a"


def _events(data: bytes) -> list[dict[str, object]]:
    """A client stream's data objects, ids and timestamps left out (they differ per translator)."""
    unstable = {"id", "item_id", "created", "created_at", "call_id"}

    def strip(value: object) -> object:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in unstable}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    lines = [
        ln[6:] for ln in data.split(b"\n") if ln.startswith(b"data: ") and ln != b"data: [DONE]"
    ]
    return [strip(orjson.loads(ln)) for ln in lines]  # type: ignore[misc]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.text(min_size=1), min_size=1, max_size=4).map(tuple),
    st.sampled_from(["openai", "responses"]),
    st.integers(0, 2**16),
)
def test_the_text_delta_fast_lane_writes_what_the_general_path_writes(
    parts: tuple[str, ...], target: Dialect, seed: int
) -> None:
    """Compact deltas whole (the fast lane) and the indented layout in random chunks (the general
    path) give the same client events, escapes and non-ASCII text included."""
    compact = run(make("anthropic", target), anthropic_text_stream(parts, compact=True))
    general = run(make("anthropic", target), anthropic_text_stream(parts), seed)
    assert _events(compact) == _events(general)
    openai_whole = run(make("openai", target), openai_text_stream(text_parts=parts))
    openai_cut = run(make("openai", target), openai_text_stream(text_parts=parts), seed)
    assert _events(openai_whole) == _events(openai_cut)


def test_a_block_skipped_earlier_in_the_same_chunk_keeps_its_deltas_out() -> None:
    """Whether a delta may take the fast lane depends on the events before it in the chunk."""
    data = anthropic_text_stream(("shown",), compact=True)
    odd_start = (
        b'event: content_block_start\ndata: {"type":"content_block_start","index":7,'
        b'"content_block":{"type":"some_future_block"}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":7,'
        b'"delta":{"type":"text_delta","text":"hidden"}}\n\n'
    )
    at = data.index(b"event: ping")
    data = data[:at] + odd_start + data[at:]
    out = run(make("anthropic", "openai"), data)  # one chunk: the skip and the delta together
    completion = read_openai(out).completion
    assert completion is not None and completion.choices[0].message.content == "shown"
    assert b"hidden" not in run(make("anthropic", "responses"), data)


def _redacted_stream() -> bytes:
    start = {"type": "message_start", "message": {
        "id": "msg_r", "type": "message", "role": "assistant", "content": [], "model": "c",
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 1}}}  # fmt: skip
    events = [
        ("message_start", start),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "redacted_thinking", "data": "RWRabc=="}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "text_delta", "text": "hi"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                           "stop_sequence": None}, "usage": {"output_tokens": 5}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    return b"".join(encode_event(json.dumps(body), name) for name, body in events)


def test_a_redacted_thinking_block_streams_as_a_marked_reasoning_item() -> None:
    out = _events(run(make("anthropic", "responses"), _redacted_stream(), seed=5))
    done = [e["item"] for e in out if e["type"] == "response.output_item.done"]
    assert done[0] == {"type": "reasoning", "summary": [],
                       "encrypted_content": "redacted_thinking:RWRabc=="}  # fmt: skip
    assert done[1]["content"][0]["text"] == "hi"


def test_a_redacted_thinking_block_is_named_as_dropped_for_chat_streams() -> None:
    t = make("anthropic", "openai")
    assert t.dropped == ()  # type: ignore[attr-defined]
    completion = read_openai(run(t, _redacted_stream())).completion
    assert completion is not None and completion.choices[0].message.content == "hi"
    assert t.dropped == ("redacted_thinking",)  # type: ignore[attr-defined]


def _compact(data: bytes) -> bytes:
    """Every event of an Anthropic stream in the API's own compact layout."""
    out = []
    for block in data.split(b"\n\n"):
        if block:
            name, _, line = block.partition(b"\n")
            body = json.loads(line.removeprefix(b"data: "))
            out.append(name + b"\ndata: " + json.dumps(body, separators=(",", ":")).encode())
    return b"\n\n".join(out) + b"\n\n"


@pytest.mark.parametrize("target", ["openai", "responses"])
@pytest.mark.parametrize("sample", ["text", "tool", "skipped"])
def test_anthropic_events_in_the_compact_layout_translate_like_any_other(
    target: Dialect, sample: str
) -> None:
    """Pings and stops in the API's layout are read from their raw bytes: nothing may change."""
    data = anthropic_tool_stream() if sample == "tool" else anthropic_text_stream()
    if sample == "skipped":  # a block no other dialect can show, stopped in the compact layout
        at = data.index(b"event: ping")
        data = (
            data[:at]
            + (
                b'event: content_block_start\ndata: {"type": "content_block_start", "index": 9, '
                b'"content_block": {"type": "some_future_block"}}\n\n'
                b'event: content_block_stop\ndata: {"type": "content_block_stop", "index": 9}\n\n'
            )
            + data[at:]
        )
    compact = run(make("anthropic", target), _compact(data))
    assert _events(compact) == _events(run(make("anthropic", target), data, seed=3))
    assert b"some_future_block" not in compact


@pytest.mark.parametrize("include_usage", [True, False])
def test_fixed_events_from_templates_equal_orjsons_objects(include_usage: bool) -> None:
    """The events with nothing variable but an id or an index are written from templates."""
    from driftgate.proxy.translate.ir import BlockStart, BlockStop, StreamDone, StreamEnd

    openai = OpenAIEncoder('m"odel', Usage(), include_usage, lambda: 7.0)
    role, finish = (
        openai.encode(StreamStart('chatcmpl-"1', Usage())),
        openai.encode(StreamEnd("length", Usage())),
    )
    base: dict[str, object] = {"id": 'chatcmpl-"1', "object": "chat.completion.chunk",
                               "created": 7, "model": 'm"odel'}  # fmt: skip
    usage: dict[str, object] = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, object], why: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": why}
        return encode_event(orjson.dumps({**base, "choices": [choice], **usage}))

    assert role == chunk({"role": "assistant", "content": ""}, None)
    assert finish == chunk({}, "length")
    anthropic = AnthropicEncoder("m", Usage())
    anthropic.encode(StreamStart("msg_1", Usage()))
    assert anthropic.encode(BlockStart(3, "text")) == encode_event(orjson.dumps(
        {"type": "content_block_start", "index": 3, "content_block": {"type": "text", "text": ""}}
    ), "content_block_start")  # fmt: skip
    assert anthropic.encode(BlockStop(3)) == encode_event(
        orjson.dumps({"type": "content_block_stop", "index": 3}), "content_block_stop"
    )
    assert anthropic.encode(StreamDone()).endswith(
        encode_event(orjson.dumps({"type": "message_stop"}), "message_stop")
    )


@pytest.mark.parametrize("target", ["openai", "responses"])
def test_an_event_read_from_its_raw_bytes_that_is_malformed_ends_the_stream_once(
    target: Dialect,
) -> None:
    """Events of the usual layout are parsed from their bytes; a bad one still ends the stream."""
    data = anthropic_text_stream(compact=True)
    at = data.index(b"event: ping")
    bad = (
        b'event: content_block_start\ndata: {"type":"content_block_start","index":"x",'
        b'"content_block":{"type":"text","text":""}}\n\n'
    )
    t = make("anthropic", target)
    out = t.feed(data[:at] + bad + data[at:])
    assert t.done and b"no integer index" in out
    assert t.finish() == b""
    if target == "openai":
        read = read_openai(out)
        assert read.done_count == 1 and read.after_done == 0


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.text(min_size=1), min_size=1, max_size=5).map(tuple),
    st.sampled_from(["anthropic", "responses"]),
    st.booleans(),
)
def test_chat_content_chunks_read_by_their_string_translate_like_any_other(
    parts: tuple[str, ...], target: Dialect, compact: bool
) -> None:
    """Content chunks that repeat the first one's bytes around their string are read by the string
    alone; chunks that differ elsewhere (each its own `created`) are parsed whole. Same events."""
    same = run(make("openai", target), openai_text_stream(text_parts=parts, compact=compact))
    differ = run(
        make("openai", target), openai_text_stream(text_parts=parts, compact=compact, vary=True)
    )
    assert _events(same) == _events(differ)
    if target == "anthropic":
        message = read_anthropic(same).message
        assert message is not None
        assert "".join(b.text for b in message.content if b.type == "text") == "".join(parts)


def _chat(delta: dict[str, object], **first: object) -> bytes:
    chunk = {**first, "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}  # fmt: skip
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _text_of(data: bytes) -> str:
    message = read_anthropic(data).message
    assert message is not None
    return "".join(b.text for b in message.content if b.type == "text")


def test_a_chat_chunk_unlike_the_learned_one_is_parsed_whole() -> None:
    """After the first content chunk, a chunk with the same head that also finishes, carries usage,
    or holds more than a string where the text goes, is read in full."""
    role = _chat({"role": "assistant", "content": ""})
    first = _chat({"content": "a"})
    finishing = first.replace(b'"a"},"finish_reason":null', b'"b"},"finish_reason":"length"')
    assert finishing != first
    usage = first.replace(b'"a"}', b'"c"}').replace(
        b"null}]}", b'null}],"usage":{"prompt_tokens":3,"completion_tokens":4}}'
    )
    not_a_string = first.replace(b'"a"', b'["d"]')
    t = make("openai", "anthropic")
    out = t.feed(role + first + usage + not_a_string + finishing + b"data: [DONE]\n\n")
    assert _text_of(out) == "acb"  # the array is no content; the stop is the finishing chunk's
    assert b'"stop_reason":"max_tokens"' in out and t.usage.output_tokens == 4


def test_a_field_spelled_like_content_elsewhere_keeps_chat_chunks_parsed_whole() -> None:
    """The string read by its bytes must be the delta's content, never a look-alike field."""
    role = _chat({"role": "assistant", "content": ""})
    # An upstream's own field before the choices, first written like the content, then not.
    chunks = [_chat({"content": "x"}, meta={"content": m}) for m in "xxyz"]
    t = make("openai", "anthropic")
    assert _text_of(t.feed(role + b"".join(chunks) + b"data: [DONE]\n\n")) == "xxxx"


@pytest.mark.parametrize("target", ["anthropic", "responses"])
def test_a_chat_stream_that_opens_with_content_starts_the_message_then_its_block(
    target: Dialect,
) -> None:
    """No role chunk: the first content chunk (read once, for the start, the block and the text)
    starts the message under the chunk's id, then opens the text block."""
    stream = _chat({"content": "hi"}) + _chat({"content": " there"}) + b"data: [DONE]\n\n"
    out = run(make("openai", target), stream)
    names = [line[7:] for line in out.split(b"\n") if line.startswith(b"event: ")]
    if target == "anthropic":
        assert names[:3] == [b"message_start", b"content_block_start", b"content_block_delta"]
        assert b'"id":"c1"' in out
        assert _text_of(out) == "hi there"
    else:
        assert names[:5] == [b"response.created", b"response.in_progress",
                             b"response.output_item.added", b"response.content_part.added",
                             b"response.output_text.delta"]  # fmt: skip
        assert b'"text":"hi there"' in out


def test_content_after_reasoning_closes_the_thinking_block_first() -> None:
    """A content chunk while a reasoning block is open takes the general path: the thinking block
    closes, then the text block opens."""
    stream = (
        _chat({"role": "assistant", "content": ""})
        + _chat({"reasoning_content": "hmm"})
        + _chat({"content": "yes"})
        + _chat({"content": "!"})
        + b"data: [DONE]\n\n"
    )
    out = run(make("openai", "anthropic"), stream)
    message = read_anthropic(out).message
    assert message is not None
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert _text_of(out) == "yes!"


def test_a_content_key_spelled_with_an_escape_keeps_chat_chunks_parsed_whole() -> None:
    """The delta's key written `"con\\u0074ent"` and a field `"content"` elsewhere holding the same
    text at first: the field is never taken for the delta's content (the probe refuses it)."""
    role = _chat({"role": "assistant", "content": ""})
    chunks = [
        b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","meta":'
        b'{"content":"%b"},"choices":[{"index":0,"delta":{"con\\u0074ent":"q"},'
        b'"finish_reason":null}]}\n\n' % m
        for m in (b"q", b"r", b"s")
    ]
    t = make("openai", "anthropic")
    assert _text_of(t.feed(role + b"".join(chunks) + b"data: [DONE]\n\n")) == "qqq"


@pytest.mark.parametrize("target", ["openai", "responses"])
def test_deltas_of_interleaved_blocks_keep_their_own_index(target: Dialect) -> None:
    """A text delta's bytes before its string are remembered for the next delta: a block whose
    index starts with the same digits (1, then 10) or a skipped block must not take them."""
    events: list[tuple[str, dict[str, object]]] = [
        ("message_start", {"type": "message_start", "message": {"id": "msg_i", "type": "message",
         "role": "assistant", "content": [], "model": "c", "stop_reason": None,
         "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 1}}}),
    ]  # fmt: skip
    for index in (1, 10):
        start = {"type": "content_block_start", "index": index,
                 "content_block": {"type": "text", "text": ""}}  # fmt: skip
        events.append(("content_block_start", start))
    events.append(("content_block_start", {"type": "content_block_start", "index": 2,
                                           "content_block": {"type": "some_future_block"}}))  # fmt: skip
    for index, text in (
        (1, "a"),
        (1, "é"),
        (10, "X"),
        (10, "Z"),
        (1, "b"),
        (2, "hidden"),
        (10, "Y"),
    ):
        delta = {"type": "content_block_delta", "index": index,
                 "delta": {"type": "text_delta", "text": text}}  # fmt: skip
        events.append(("content_block_delta", delta))
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("content_block_stop", {"type": "content_block_stop", "index": 10}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                           "stop_sequence": None}, "usage": {"output_tokens": 5}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    data = b"".join(encode_event(json.dumps(body), name) for name, body in events)
    compact = run(make("anthropic", target), _compact(data))
    assert _events(compact) == _events(run(make("anthropic", target), data, seed=3))
    assert b"hidden" not in compact and b'"a"' in compact and b'"Y"' in compact


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(min_size=1), min_size=2, max_size=6).map(tuple),
    st.sampled_from(["openai", "responses"]),
)
def test_a_run_of_lane_deltas_the_encoder_cannot_take_goes_the_general_path(
    parts: tuple[str, ...], target: Dialect
) -> None:
    """Text deltas for a block that opened as thinking: the decoder's lane takes them as a run,
    the Responses encoder has no message item to write them to and refuses it, and each delta
    takes the general path; the answer equals the general path's (another layout, per event)."""

    def stream(compact: bool) -> list[bytes]:
        text = anthropic_text_stream(parts, compact=compact)
        start = text.index(b"event: content_block_start")
        block = {"type": "thinking", "thinking": "", "signature": ""}
        start_data = {"type": "content_block_start", "index": 0, "content_block": block}
        thinking = b"event: content_block_start\ndata: " + json.dumps(start_data).encode() + b"\n\n"
        text = text[:start] + thinking + text[text.index(b"event: ping") :]
        return [block + b"\n\n" for block in text.split(b"\n\n") if block]

    one_run = make("anthropic", target)
    whole = one_run.feed(b"".join(stream(True))) + one_run.finish()
    per_event = make("anthropic", target)
    general = b"".join(per_event.feed(block) for block in stream(False)) + per_event.finish()
    assert _events(whole) == _events(general)
    assert len(_events(whole)) >= len(parts) + 3  # every delta written


def test_a_pair_of_classes_has_its_lanes_looked_up_once() -> None:
    """The lanes (quick_of, text_of, text, texts) are found once per pair of decoder and encoder
    classes, not per stream; a decoder without text_of gets no text lane."""
    first = stream_translator("openai", "anthropic", model="m", include_usage=True)
    second = stream_translator("openai", "anthropic", model="n", include_usage=False)
    assert first._hooks is second._hooks
    assert first._hooks.text_of is not None and first._hooks.texts is not None
    bridged = stream_translator("responses", "anthropic", model="m", include_usage=True)
    assert bridged._hooks.text_of is None and bridged._hooks.quick_of is None
    assert bridged._hooks.text(None, 0, "x", None) is None


def test_a_stream_split_anywhere_keeps_its_unfinished_tail_for_the_next_chunk() -> None:
    whole = (
        b"".join(
            encode_event(orjson.dumps(c))
            for c in (
                {
                    "id": "c",
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}],
                },
                {"id": "c", "choices": [{"index": 0, "delta": {"content": "Hi"}}]},
                {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            )
        )
        + b"data: [DONE]\n\n"
    )
    one = stream_translator("openai", "anthropic", model="m", include_usage=True)
    expected = one.feed(whole) + one.finish()
    crlf = whole.replace(b"\n", b"\r\n")
    for raw in (whole, crlf):
        for cut in range(1, len(raw)):
            split = stream_translator("openai", "anthropic", model="m", include_usage=True)
            got = split.feed(raw[:cut]) + split.feed(raw[cut:]) + split.finish()
            assert got == expected, cut
