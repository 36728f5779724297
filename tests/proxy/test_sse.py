"""SSE parser and encoder."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftgate.proxy.sse import SSEEvent, SSEParser, encode_event
from tests.proxy.translate.sse_samples import (
    anthropic_tool_stream,
    openai_tool_stream,
)


def parse_all(data: bytes, sizes: list[int] | None = None) -> list[SSEEvent]:
    parser = SSEParser()
    out: list[SSEEvent] = []
    pos = 0
    for size in sizes or [len(data)]:
        out += parser.feed(data[pos : pos + size])
        pos += size
    out += parser.feed(data[pos:])
    return out + parser.flush()


def test_parses_named_events_and_data() -> None:
    events = parse_all(b'event: ping\ndata: {"type": "ping"}\n\ndata: x\n\n')
    assert events == [SSEEvent("ping", '{"type": "ping"}'), SSEEvent(None, "x")]


@pytest.mark.parametrize("sep", [b"\n", b"\r\n", b"\r"])
def test_line_endings(sep: bytes) -> None:
    data = b"event: a" + sep + b"data: 1" + sep + b"data: 2" + sep + sep + b"data: 3" + sep + sep
    assert parse_all(data) == [SSEEvent("a", "1\n2"), SSEEvent(None, "3")]


def test_comments_ids_and_missing_space_after_colon() -> None:
    data = b": keep-alive\nid: 7\nretry: 10\ndata:tight\n\n:another\n\n"
    assert parse_all(data) == [SSEEvent(None, "tight")]


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n\r") == []
    assert parser.feed(b"\ndata: b\r\n\r\n") == [SSEEvent(None, "a"), SSEEvent(None, "b")]


def test_utf8_split_inside_a_character() -> None:
    raw = 'data: {"t": "héllo ✓ 日本"}\n\n'.encode()
    cut = raw.index("✓".encode()) + 1
    parser = SSEParser()
    assert parser.feed(raw[:cut]) == []
    assert parser.feed(raw[cut:]) == [SSEEvent(None, '{"t": "héllo ✓ 日本"}')]


def test_flush_dispatches_an_event_without_final_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: [DONE]") == []
    assert parser.flush() == [SSEEvent(None, "[DONE]")]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), max_size=60))
def test_any_chunking_parses_the_same(sizes: list[int]) -> None:
    data = anthropic_tool_stream() + openai_tool_stream().replace(b"\n", b"\r\n")
    assert parse_all(data, sizes) == parse_all(data)


def test_encode_event_round_trips_multiline_data() -> None:
    raw = encode_event("line1\nline2", "custom")
    assert raw == b"event: custom\ndata: line1\ndata: line2\n\n"
    assert parse_all(raw) == [SSEEvent("custom", "line1\nline2")]
    assert encode_event(b'{"a":1}') == b'data: {"a":1}\n\n'


line_text = st.text(
    st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=12
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.none() | line_text.filter(bool),
            st.lists(line_text, min_size=1, max_size=3),
            st.booleans(),  # a comment line first
            st.booleans(),  # "data:x" without the space
        ),
        max_size=5,
    ),
    st.sampled_from([b"\n", b"\r\n", b"\r"]),
    st.lists(st.integers(1, 40), max_size=8),
)
def test_any_event_shape_line_ending_and_chunking_parses_the_same(
    events: list[tuple[str | None, list[str], bool, bool]], eol: bytes, sizes: list[int]
) -> None:
    """The usual shapes take a fast path; every other shape must come out as the spec says."""
    raw = b""
    for name, lines, comment, tight in events:
        if comment:
            raw += b": keep-alive" + eol
        if name is not None:
            raw += b"event: " + name.encode() + eol
        raw += b"".join((b"data:" if tight else b"data: ") + x.encode() + eol for x in lines)
        raw += eol
    expected = [SSEEvent(name, "\n".join(lines)) for name, lines, _, _ in events]
    if any(x.startswith(" ") for _, lines, _, tight in events if tight for x in lines):
        return  # "data: x" after "data:" is ambiguous by design (one leading space is eaten)
    assert parse_all(raw, sizes) == expected
