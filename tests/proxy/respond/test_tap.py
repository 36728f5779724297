"""The same-dialect stream tap: bytes relayed unchanged, usage and the end read, malformed events cut."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftgate.proxy.errors import Dialect
from driftgate.proxy.respond.tap import StreamTap, stream_tap
from driftgate.proxy.sse import Usage
from tests.proxy.test_sse import parse_all
from tests.proxy.translate.sse_samples import (
    anthropic_text_stream,
    anthropic_tool_stream,
    openai_text_stream,
    openai_tool_stream,
)


def feed_tap(dialect: Dialect, data: bytes, size: int) -> tuple[bytes, StreamTap]:
    tap = stream_tap(dialect)
    out = b""
    for i in range(0, len(data), size):
        out += tap.feed(data[i : i + size]) or b""
    return out, tap


@pytest.mark.parametrize("size", [1, 7, 100, 100_000])
def test_tap_forwards_anthropic_bytes_unchanged_and_collects_usage(size: int) -> None:
    data = anthropic_text_stream()
    out, tap = feed_tap("anthropic", data, size)
    assert out == data
    assert tap.usage == Usage(
        input_tokens=25, output_tokens=15, cache_read_tokens=100, cache_write_tokens=7
    )
    assert tap.done
    assert tap.finish() == b""


@pytest.mark.parametrize("size", [1, 13, 100_000])
def test_tap_forwards_openai_bytes_unchanged_and_collects_usage(size: int) -> None:
    data = openai_tool_stream()
    out, tap = feed_tap("openai", data, size)
    assert out == data
    # prompt_tokens 1200 includes 1024 cached tokens
    assert tap.usage == Usage(input_tokens=176, output_tokens=40, cache_read_tokens=1024)
    assert tap.done and tap.malformed is None


def test_tap_holds_back_a_partial_event() -> None:
    tap = stream_tap("openai")
    assert tap.feed(b'data: {"choices": []') is None
    assert tap.feed(b"}\n\ndata: [DO") == b'data: {"choices": []}\n\n'
    assert tap.feed(b"NE]\n\n") == b"data: [DONE]\n\n"
    assert tap.done


@pytest.mark.parametrize("dialect", ["anthropic", "openai"])
def test_tap_truncated_stream_ends_with_an_error_event(dialect: Dialect) -> None:
    data = anthropic_text_stream() if dialect == "anthropic" else openai_text_stream()
    cut = data[: len(data) // 2]
    tap = stream_tap(dialect)
    tap.feed(cut)
    tail = tap.finish()
    assert not tap.done
    events = parse_all(tail)
    if dialect == "anthropic":
        assert events[0].event == "error"
        assert json.loads(events[0].data)["error"]["type"] == "api_error"
    else:
        assert "error" in json.loads(events[0].data)
        assert events[-1].data == "[DONE]"
    assert tap.finish() == b""  # only once


def test_tap_flags_a_malformed_data_line_and_forwards_only_whole_good_events() -> None:
    good = b'data: {"id":"c","choices":[]}\n\n'
    tap = stream_tap("openai")
    assert tap.feed(good + b"data: {not json\n\n" + good) == good
    assert tap.malformed is not None and "not JSON" in tap.malformed
    assert tap.feed(good) is None
    tail = tap.fail("upstream sent malformed SSE")
    assert b"upstream sent malformed SSE" in tail and tail.endswith(b"data: [DONE]\n\n")


def test_tap_flags_broken_json_in_a_usage_event() -> None:
    tap = stream_tap("anthropic")
    bad = b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":}\n\n'
    assert tap.feed(bad) is None
    assert tap.malformed is not None


def test_tap_completes_a_final_event_missing_its_blank_line() -> None:
    tap = stream_tap("openai")
    assert tap.feed(b'data: {"choices":[]}\n\ndata: [DONE]\n') == b'data: {"choices":[]}\n\n'
    assert tap.finish() == b"data: [DONE]\n\n"
    assert tap.done


def test_tap_drops_a_malformed_unterminated_tail_and_ends_with_error() -> None:
    tap = stream_tap("openai")
    assert tap.feed(b'data: {"choi') is None
    tail = tap.finish()
    assert tail.startswith(b'data: {"error"') and tail.endswith(b"data: [DONE]\n\n")
    assert tap.malformed is not None


def test_tap_fail_after_done_adds_nothing() -> None:
    tap = stream_tap("anthropic")
    tap.feed(anthropic_text_stream())
    assert tap.fail("reset") == b""


def test_tap_upstream_error_event_is_terminal() -> None:
    tap = stream_tap("anthropic")
    err = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    assert tap.feed(err) == err
    assert tap.done and tap.finish() == b""


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["anthropic", "openai"]), st.data())
def test_tap_any_chunking_forwards_everything_once(dialect: Dialect, data: st.DataObject) -> None:
    raw = (
        anthropic_tool_stream()
        if dialect == "anthropic"
        else openai_tool_stream().replace(b"\n", b"\r\n")
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=30)))
    tap = stream_tap(dialect)
    out, prev = b"", 0
    for cut in [*cuts, len(raw)]:
        out += tap.feed(raw[prev:cut]) or b""
        prev = cut
    assert out + tap.finish() == raw
    assert tap.done and tap.malformed is None


def test_tap_reads_usage_when_every_chunk_carries_a_null_usage() -> None:
    chunk = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"hi"}}],"usage": null}\n\n'
    final = b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}}\n\n'
    tap = stream_tap("openai")
    for part in (chunk, chunk, final, b"data: [DONE]\n\n"):
        assert tap.feed(part) == part
    assert tap.usage == Usage(input_tokens=10, output_tokens=2)


def test_tap_cuts_before_a_broken_usage_event_in_the_middle_of_a_chunk() -> None:
    good = b'event: ping\ndata: {"type":"ping"}\n\n'
    bad = b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":}}\n\n'
    tap = stream_tap("anthropic")
    assert tap.feed(good + good + bad + good) == good + good
    assert tap.malformed is not None and not tap.done


def _exact(dialect: Dialect, data: bytes) -> tuple[int | None, Usage, bool, str | None]:
    tap = stream_tap(dialect)
    cut = tap._scan_lines(data)
    return cut, tap.usage, tap.done, tap.malformed


def _fast(dialect: Dialect, data: bytes) -> tuple[int | None, Usage, bool, str | None]:
    tap = stream_tap(dialect)
    cut = tap._scan(data)
    return cut, tap.usage, tap.done, tap.malformed


_BROKEN_LINES = [
    b"data: {not json\n\n",
    b'data: {"type":"message_delta","usage":{"output_tokens":}\n\n',
    b'data: {"usage": [1}\n\n',
    b"data: [DONE\n\n",
    b"data: plain text\n\n",
    b'data: {"a":1}\ndata: {"b":2}\n\n',
    b"data:{}\n\n",
    b": keep-alive\n\n",
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n',
]


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(["anthropic", "openai"]), st.data())
def test_tap_fast_scan_agrees_with_the_line_by_line_scan(
    dialect: Dialect, data: st.DataObject
) -> None:
    raw = anthropic_tool_stream() if dialect == "anthropic" else openai_tool_stream()
    events = [e + b"\n\n" for e in raw.split(b"\n\n") if e]
    picked = data.draw(st.lists(st.sampled_from(events + _BROKEN_LINES), min_size=1, max_size=12))
    chunk = b"".join(picked)
    if data.draw(st.booleans()):
        chunk = chunk.replace(b"\n", b"\r\n")
    assert _fast(dialect, chunk) == _exact(dialect, chunk)
