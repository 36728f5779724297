"""The Responses stream's fixed events: ids and usage written as before, at any count."""

from __future__ import annotations

import json
import re

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftgate.proxy.sse import Usage
from driftgate.proxy.translate import responses_events as fixed
from driftgate.proxy.translate.anthropic_stream import AnthropicDecoder
from driftgate.proxy.translate.responses_response import _ID_PREFIX, new_id, usage_json
from driftgate.proxy.translate.responses_stream import ResponsesEncoder
from driftgate.proxy.translate.stream import Translator


def test_ids_count_on_in_their_format_across_the_cached_high_digits() -> None:
    """Each id is the prefix, the process's 16 hex digits and the next count's 16, also where
    the count's high digits change (every 256 ids): none repeats, none goes back."""
    ids = [new_id("msg_") for _ in range(700)]
    first = int(ids[0][-16:], 16)
    assert ids == [f"msg_{_ID_PREFIX}{first + k:016x}" for k in range(700)]
    assert all(re.fullmatch(r"msg_[0-9a-f]{32}", i) for i in ids)
    assert new_id("resp_").startswith("resp_" + _ID_PREFIX)


counts = st.integers(-(2**64), 2**65)


@settings(max_examples=300, deadline=None)
@given(st.builds(Usage, counts, counts, counts, counts, counts))
def test_usage_bytes_are_what_orjson_writes_and_past_it_still_json(usage: Usage) -> None:
    """Where orjson writes the usage the bytes are its bytes; past 64 bits (where it raises)
    they are still JSON, with every count in full."""
    written = fixed.usage_bytes(usage)
    expected = usage_json(usage)
    try:
        assert written == orjson.dumps(expected)
    except orjson.JSONEncodeError:
        assert json.loads(written) == expected


@pytest.mark.parametrize(
    "usage",
    [Usage(2**63, 0), Usage(-1, 0), Usage(2**64 - 1, 0), Usage(0, 0, 0, 0, -(2**63))],
)
def test_usage_bytes_at_the_edges_of_what_orjson_writes(usage: Usage) -> None:
    assert fixed.usage_bytes(usage) == orjson.dumps(usage_json(usage))


def _sse(kind: str, data: str) -> bytes:
    return f"event: {kind}\ndata: {data}\n\n".encode()


@pytest.mark.parametrize("split", [False, True])
def test_a_usage_past_64_bits_still_ends_the_stream_with_its_counts(split: bool) -> None:
    """An upstream reporting 2**64 tokens in all once got no final event at all (orjson raised
    after the encoder had marked itself finished); now the stream completes with the counts."""
    upstream = (
        _sse("message_start", '{"type":"message_start","message":{"id":"msg_1","type":"message",'
             '"role":"assistant","model":"m","content":[],'
             '"usage":{"input_tokens":1,"output_tokens":0}}}')
        + _sse("content_block_start", '{"type":"content_block_start","index":0,'
               '"content_block":{"type":"text","text":""}}')
        + _sse("content_block_delta", '{"type":"content_block_delta","index":0,'
               '"delta":{"type":"text_delta","text":"hi"}}')
        + _sse("content_block_stop", '{"type":"content_block_stop","index":0}')
        + _sse("message_delta", '{"type":"message_delta","delta":{"stop_reason":"end_turn"},'
               '"usage":{"output_tokens":18446744073709551615}}')
        + _sse("message_stop", '{"type":"message_stop"}')
    )  # fmt: skip
    usage = Usage()
    encoder = ResponsesEncoder("m", usage, True, lambda: 1.0)
    translator = Translator("responses", AnthropicDecoder(), encoder, usage)
    if split:
        cut = len(upstream) - 40
        out = translator.feed(upstream[:cut]) + translator.feed(upstream[cut:])
    else:
        out = translator.feed(upstream)
    assert out.count(b"event: response.completed") == 1
    final = out.split(b"event: response.completed\ndata: ")[1].split(b"\n\n")[0]
    completed = json.loads(final)["response"]
    assert completed["status"] == "completed"
    assert completed["usage"]["output_tokens"] == 2**64 - 1
    assert completed["usage"]["total_tokens"] == 2**64
    assert translator.fail("late") == b""  # ended once: no second final event


def test_a_failure_after_usage_past_64_bits_writes_response_failed() -> None:
    encoder = ResponsesEncoder("m", Usage(2**64, 2**64), True, lambda: 1.0)
    out = encoder.fail("upstream went away")
    failed = json.loads(out.split(b"event: response.failed\ndata: ")[1].split(b"\n\n")[0])
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["usage"]["input_tokens"] == 2**64
