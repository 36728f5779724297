"""Property tests: request round trips, chunking invariance, one terminal event, SDK-parseable output."""

from __future__ import annotations

import json
from typing import Any

from anthropic.types import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion

from driftgate.proxy.errors import Dialect, InvalidRequest
from driftgate.proxy.translate import stream_translator, translate_request, translate_response
from tests.proxy.translate.sdk_readers import read_anthropic, read_openai
from tests.proxy.translate.sse_samples import (
    anthropic_text_stream,
    anthropic_tool_stream,
    openai_text_stream,
    openai_tool_stream,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(min_size=1, max_size=30)
json_scalar = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=10)
tool_input = st.dictionaries(
    st.text(min_size=1, max_size=8), json_scalar | st.lists(json_scalar, max_size=3), max_size=4
)
image = st.builds(
    lambda mt, data: {
        "type": "image",
        "source": {"type": "base64", "media_type": mt, "data": data},
    },
    st.sampled_from(["image/png", "image/jpeg"]),
    st.text(alphabet="ABCDEFGHabcdefgh0123456789+/", min_size=4, max_size=16),
) | st.builds(
    lambda u: {"type": "image", "source": {"type": "url", "url": u}},
    st.sampled_from(["https://example.com/a.png", "http://h/x.jpg"]),
)


@st.composite
def conversations(draw: st.DrawFn) -> dict[str, Any]:
    """An Anthropic request: alternating turns, tool uses answered by tool results in the next turn."""
    counter = iter(range(10_000))
    messages: list[dict[str, Any]] = []
    pending: list[str] = []
    for turn in range(draw(st.integers(1, 5))):
        if turn % 2 == 0:
            results = [
                {"type": "tool_result", "tool_use_id": tid,
                 "content": draw(st.sampled_from(["", "ok"]) | text | st.lists(st.builds(lambda t: {"type": "text", "text": t}, text), max_size=3))}
                for tid in pending
            ]  # fmt: skip
            extra = draw(
                st.lists(st.builds(lambda t: {"type": "text", "text": t}, text) | image, max_size=3)
            )
            content: Any = results + extra
            if not content:
                content = draw(text)
            messages.append({"role": "user", "content": content})
            pending = []
        else:
            texts = draw(
                st.lists(st.builds(lambda t: {"type": "text", "text": t}, text), max_size=2)
            )
            uses: list[dict[str, Any]] = [
                {"type": "tool_use", "id": f"toolu_{next(counter)}", "name": draw(st.sampled_from(["get_weather", "search", "f"])),
                 "input": draw(tool_input)}
                for _ in range(draw(st.integers(0 if texts else 1, 3)))
            ]  # fmt: skip
            pending = [u["id"] for u in uses]
            messages.append({"role": "assistant", "content": texts + uses})
    body: dict[str, Any] = {
        "model": "claude-x",
        "max_tokens": draw(st.integers(1, 8192)),
        "messages": messages,
    }
    system = draw(
        st.none()
        | text
        | st.lists(st.builds(lambda t: {"type": "text", "text": t}, text), min_size=1, max_size=3)
    )
    if system is not None:
        body["system"] = system
    return body


def normalise(body: dict[str, Any]) -> dict[str, Any]:
    """Spellings that mean the same to Anthropic made equal (string content vs one text block)."""

    def blocks(content: Any) -> list[Any]:
        if content is None:
            return []
        return [{"type": "text", "text": content}] if isinstance(content, str) else content

    messages = []
    for m in body["messages"]:
        out = []
        for b in blocks(m["content"]):
            if b["type"] == "tool_result":
                b = {
                    **b,
                    "content": [
                        c for c in blocks(b.get("content")) if c != {"type": "text", "text": ""}
                    ],
                }
            out.append(b)
        messages.append({"role": m["role"], "content": out})
    system = [b["text"] for b in blocks(body.get("system"))]
    return {"system": system, "messages": messages, "max_tokens": body["max_tokens"]}


@SETTINGS
@given(conversations())
def test_request_round_trip_anthropic_openai_anthropic(body: dict[str, Any]) -> None:
    to_openai = translate_request(body, "anthropic", "openai", model="gpt-4o")
    back = translate_request(to_openai.body, "openai", "anthropic", model="claude-x")
    assert to_openai.dropped == () and back.dropped == ()
    assert normalise(back.body) == normalise(body)


def _sample(source: Dialect, kind: int, parts: tuple[str, ...]) -> bytes:
    if source == "anthropic":
        return anthropic_tool_stream() if kind == 0 else anthropic_text_stream(parts)
    return openai_tool_stream() if kind == 0 else openai_text_stream(kind == 1, parts)


def _translate(
    source: Dialect, target: Dialect, data: bytes, cuts: list[int], include_usage: bool
) -> bytes:
    t = stream_translator(source, target, model="m", include_usage=include_usage, clock=lambda: 1.0)
    out, prev = b"", 0
    for cut in [*sorted(cuts), len(data)]:
        out += t.feed(data[prev:cut])
        prev = cut
    return out + t.finish()


stream_case = st.tuples(
    st.sampled_from([("anthropic", "openai"), ("openai", "anthropic")]),
    st.integers(0, 2),
    st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=5).map(tuple),
    st.booleans(),
)


@SETTINGS
@given(stream_case, st.data())
def test_any_chunking_gives_the_same_output(case: Any, data: st.DataObject) -> None:
    (source, target), kind, parts, include_usage = case
    raw = _sample(source, kind, parts)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=40))
    assert _translate(source, target, raw, cuts, include_usage) == _translate(
        source, target, raw, [], include_usage
    )


def _terminals(target: Dialect, out: bytes) -> int:
    if target == "openai":
        read = read_openai(out)  # also validates every chunk against the SDK's types
        assert read.after_done == 0
        return read.done_count
    read_a = read_anthropic(out)  # also validates every event against the SDK's types
    return read_a.events.count("message_stop") + read_a.events.count("error")


@SETTINGS
@given(stream_case, st.data())
def test_every_translated_stream_ends_with_exactly_one_terminal_event(
    case: Any, data: st.DataObject
) -> None:
    (source, target), kind, parts, include_usage = case
    raw = _sample(source, kind, parts)
    end = data.draw(st.integers(0, len(raw)))  # truncated anywhere, or whole
    cuts = data.draw(st.lists(st.integers(0, end), max_size=10))
    t = stream_translator(source, target, model="m", include_usage=include_usage)
    out, prev = b"", 0
    for cut in [*sorted(cuts), end]:
        out += t.feed(raw[prev:cut])
        prev = cut
    out += t.fail("reset") if data.draw(st.booleans()) else t.finish()
    out += t.finish() + t.fail("again")
    assert t.done
    assert _terminals(target, out) == 1


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from(
    ["model", "messages", "system", "max_tokens", "tools", "tool_choice", "thinking", "metadata",
     "stop", "stop_sequences", "n", "reasoning_effort", "parallel_tool_calls", "role", "content",
     "type", "text", "tool_calls", "function", "arguments", "tool_call_id", "source", "image_url",
     "url", "input", "tool_use_id", "name", "choices", "message", "delta", "usage", "id", "index"]
)  # fmt: skip
shaped = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(
        ["user", "assistant", "tool", "system", "text", "image", "tool_use", "tool_result",
         "function", "auto", "any", "required", "enabled", "base64", "url", "{}", "{", "[DONE]"]
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=6),
    max_leaves=30,
)  # fmt: skip


@SETTINGS
@given(
    st.sampled_from([("anthropic", "openai"), ("openai", "anthropic")]),
    st.dictionaries(keys, shaped | json_value, max_size=8),
)
def test_garbage_requests_raise_only_invalid_request(
    pair: tuple[Dialect, Dialect], body: dict[str, Any]
) -> None:
    try:
        translate_request(body, pair[0], pair[1], model="m")
    except InvalidRequest as exc:
        assert exc.message and exc.status == 400


@SETTINGS
@given(
    st.sampled_from([("anthropic", "openai"), ("openai", "anthropic")]),
    st.dictionaries(keys, shaped | json_value, max_size=8),
)
def test_garbage_responses_still_give_a_valid_client_body(
    pair: tuple[Dialect, Dialect], body: dict[str, Any]
) -> None:
    out = translate_response(body, pair[0], pair[1], model="m").body
    if pair[1] == "openai":
        ChatCompletion.model_validate(out)
    else:
        Message.model_validate(out)


@SETTINGS
@given(
    st.sampled_from([("anthropic", "openai"), ("openai", "anthropic")]),
    st.lists(shaped | json_value, max_size=6),
    st.booleans(),
)
def test_garbage_streams_end_with_one_terminal_event(
    pair: tuple[Dialect, Dialect], events: list[Any], named: bool
) -> None:
    source, target = pair
    raw = b"".join(
        (b"event: x\n" if named else b"") + b"data: " + json.dumps(e).encode() + b"\n\n"
        for e in events
    )
    t = stream_translator(source, target, model="m", include_usage=True)
    out = t.feed(raw) + t.finish()
    assert t.done and _terminals(target, out) == 1


tool_defs = st.lists(
    st.builds(
        lambda n, d: {"name": n, **({"description": d} if d else {}),
                      "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}},
        st.sampled_from(["get_weather", "search", "f"]),
        st.none() | text,
    ),
    min_size=1, max_size=3, unique_by=lambda t: t["name"],
)  # fmt: skip


@st.composite
def requests_with_options(draw: st.DrawFn) -> dict[str, Any]:
    """A conversation plus tools, tool_choice, sampling, stop sequences and metadata."""
    body = draw(conversations())
    tools = draw(st.none() | tool_defs)
    if tools:
        body["tools"] = tools
        body["tool_choice"] = draw(
            st.sampled_from([{"type": "auto"}, {"type": "any"}, {"type": "none"}])
            | st.sampled_from([{"type": "tool", "name": t["name"]} for t in tools])
        )
    for key, strategy in (
        ("temperature", st.floats(0, 1, allow_nan=False)),
        ("top_p", st.floats(0.01, 1, allow_nan=False)),
        ("stop_sequences", st.lists(text, min_size=1, max_size=4)),
        ("metadata", st.builds(lambda u: {"user_id": u}, text)),
        ("stream", st.just(True)),
    ):
        value = draw(st.none() | strategy)
        if value is not None:
            body[key] = value
    return body


@SETTINGS
@given(requests_with_options())
def test_request_options_survive_a_round_trip(body: dict[str, Any]) -> None:
    stream = body.get("stream") is True  # decided by the intake, as the gateway does
    to_openai = translate_request(body, "anthropic", "openai", model="gpt-4o", stream=stream)
    back = translate_request(to_openai.body, "openai", "anthropic", model="claude-x", stream=stream)
    assert to_openai.dropped == () and back.dropped == ()
    keys = ("tools", "tool_choice", "temperature", "top_p", "stop_sequences", "metadata", "stream")
    assert {k: back.body.get(k) for k in keys} == {k: body.get(k) for k in keys}
    assert normalise(back.body) == normalise(body)


parts_in_answer = st.lists(
    st.builds(lambda t: {"type": "text", "text": t}, text)
    | st.builds(
        lambda i, n, a: {"type": "tool_use", "id": f"toolu_{i}", "name": n, "input": a},
        st.integers(0, 99), st.sampled_from(["get_weather", "f"]), tool_input,
    ),
    min_size=1, max_size=4, unique_by=lambda b: b.get("id", id(b)),
)  # fmt: skip


@SETTINGS
@given(
    parts_in_answer,
    st.sampled_from(["end_turn", "max_tokens", "tool_use", "refusal"]),
    st.tuples(*[st.integers(0, 10_000)] * 4),
)
def test_answer_round_trip_anthropic_openai_anthropic(
    content: list[dict[str, Any]], stop: str, tokens: tuple[int, int, int, int]
) -> None:
    usage = dict(zip(("input_tokens", "output_tokens", "cache_read_input_tokens",
                      "cache_creation_input_tokens"), tokens, strict=True))  # fmt: skip
    answer = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
              "content": content, "stop_reason": stop, "stop_sequence": None, "usage": usage}  # fmt: skip
    as_openai = translate_response(answer, "anthropic", "openai", model="m")
    back = translate_response(as_openai.body, "openai", "anthropic", model="claude-x").body
    texts = "".join(b["text"] for b in content if b["type"] == "text")
    calls = [(b["id"], b["name"], b["input"]) for b in content if b["type"] == "tool_use"]
    assert "".join(b["text"] for b in back["content"] if b["type"] == "text") == texts
    assert [
        (b["id"], b["name"], b["input"]) for b in back["content"] if b["type"] == "tool_use"
    ] == calls
    assert back["stop_reason"] == stop
    # OpenAI folds cache reads into prompt_tokens; cache writes are not separable on the way back
    assert back["usage"]["output_tokens"] == usage["output_tokens"]
    assert back["usage"]["cache_read_input_tokens"] == usage["cache_read_input_tokens"]
    total_in = (
        usage["input_tokens"]
        + usage["cache_read_input_tokens"]
        + usage["cache_creation_input_tokens"]
    )
    assert back["usage"]["input_tokens"] + back["usage"]["cache_read_input_tokens"] == total_in
    assert as_openai.dropped == ()
