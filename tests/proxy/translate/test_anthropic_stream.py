"""The Anthropic decoder's byte lanes for message_start and message_delta against its general path."""

from __future__ import annotations

import pytest

from driftgate.proxy.sse import event_of
from driftgate.proxy.translate import anthropic_stream
from driftgate.proxy.translate.anthropic_stream import AnthropicDecoder
from driftgate.proxy.translate.ir import StreamEvent
from driftgate.proxy.translate.stream_events import MalformedStream

_START = b'data: {"type":"message_start","message":{'
_FIELDS = b'"type":"message","role":"assistant",'
_NULLS = b'"content":[],"stop_reason":null,"stop_sequence":null,'
_CACHE = b'"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},'
# message_start data in the layouts the API writes: taken by the lane.
STARTS_IN_LANE = [
    _START + b'"id":"msg_bench0001",' + _FIELDS + b'"model":"claude-sonnet-4-6",' + _NULLS
    + b'"usage":{"input_tokens":12,"output_tokens":1}}}',
    _START + b'"model":"claude-sonnet-4-5-20250929","id":"msg_01XYZ",' + _FIELDS + _NULLS
    + b'"usage":{"input_tokens":3,"cache_creation_input_tokens":250,"cache_read_input_tokens":9,'
    + _CACHE + b'"output_tokens":1,"service_tier":"standard"}}}',
    _START + b'"id":"msg_0",' + _FIELDS + _NULLS + b'"usage":{"input_tokens":0,'
    b'"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}}',
]  # fmt: skip
# Unusual ones: the general path reads them (or says what is wrong with them).
STARTS_PARSED = [
    _START + b'"id":"msg_\\u0031",' + _FIELDS + _NULLS + b'"usage":{"input_tokens":1,"output_tokens":1}}}',
    _START + b'"id":"msg_1",' + _FIELDS + _NULLS + b'"usage":{"input_tokens":01,"output_tokens":1}}}',
    _START + b'"id":"msg_1",' + _FIELDS + _NULLS
    + b'"usage":{"input_tokens":123456789012345678901,"output_tokens":1}}}',
    _START + b'"id":"msg_1",' + _FIELDS + _NULLS + b'"usage":{"input_tokens":1,"output_tokens":1,}}}',
    _START + b'"id":"msg_1",' + _FIELDS + _NULLS + b'"usage":{"input_tokens":1,"output_tokens":1}}',
    _START + b'"id":"msg_1",' + _FIELDS + b'"model":"cl\xc3aude",' + _NULLS
    + b'"usage":{"input_tokens":1,"output_tokens":1}}}',
    _START + b'"id":"msg_1",' + _FIELDS + b'"model":"cl\\"aude",' + _NULLS
    + b'"usage":{"input_tokens":1,"output_tokens":1}}}',
    _START + b'"id":"msg_1",' + _FIELDS + _NULLS
    + b'"usage":{"input_tokens":1,"output_tokens":1},"usage":{"input_tokens":5,"output_tokens":6}}}',
    _START + b'"id":"msg_1",' + _FIELDS + _NULLS + b'"usage":{"input_tokens":1,"output_tokens":-1}}}',
    _START + b'"id":"msg_1",' + _FIELDS + _NULLS + b'"usage":{"input_tokens":1,"output_tokens":1.0}}}',
    b'data: {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 4}}}',
    _START + b'"id":"msg_1",' + _FIELDS + _NULLS + b'"usage":null}}',
    _START + b'"id":7,' + _FIELDS + _NULLS + b'"usage":{"input_tokens":1,"output_tokens":1}}}',
]  # fmt: skip
_DELTA = b'data: {"type":"message_delta","delta":{"stop_reason":'
DELTAS_IN_LANE = [
    _DELTA + b'"end_turn","stop_sequence":null},"usage":{"output_tokens":8}}',
    _DELTA + b'"tool_use","stop_sequence":null},"usage":{"input_tokens":3,'
    b'"cache_creation_input_tokens":250,"cache_read_input_tokens":9,"output_tokens":41}}',
    _DELTA + b'"some_future_reason","stop_sequence":null},"usage":{"output_tokens":0}}',
    _DELTA + b'null,"stop_sequence":null},"usage":{"output_tokens":2}}',
]  # fmt: skip
DELTAS_PARSED = [
    _DELTA + b'"stop_sequence","stop_sequence":"\\n\\nHuman:"},"usage":{"output_tokens":8}}',
    _DELTA + b'"end_turn","stop_sequence":null},"usage":{"output_tokens":8,'
    b'"server_tool_use":{"web_search_requests":1}}}',
    _DELTA + b'"end_turn","stop_sequence":null},"usage":{"output_tokens":08}}',
    _DELTA + b'"end_turn","stop_sequence":null},"usage":{"output_tokens":8}',
    _DELTA + b'"end_turn","stop_sequence":null},"usage":{"output_tokens":8},"usage":{}}',
    _DELTA + b'"end\\u005fturn","stop_sequence":null},"usage":{"output_tokens":8}}',
    _DELTA + b'"end_turn","stop_sequence":null},"usage":{"input_tokens":1}}',
    b'data: {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {}}',
]  # fmt: skip


def _general(block: bytes) -> list[StreamEvent] | str:
    """What the general path makes of a block (the decoder's decode of its parsed event)."""
    event = event_of(block)
    assert event is not None
    try:
        return AnthropicDecoder().decode(event)
    except MalformedStream as exc:
        return exc.message


def _quick(block: bytes) -> list[StreamEvent] | str | None:
    try:
        return AnthropicDecoder().quick_of(block)
    except MalformedStream as exc:
        return exc.message


@pytest.mark.parametrize("data", STARTS_IN_LANE + STARTS_PARSED)
def test_message_start_read_from_its_bytes_means_what_its_parse_means(data: bytes) -> None:
    """The API's layouts take the lane; every other one gives what the general path gives."""
    block = b"event: message_start\n" + data
    in_lane = anthropic_stream._MESSAGE_START_DATA(data) is not None
    assert in_lane == (data in STARTS_IN_LANE)
    quick = _quick(block)
    assert (quick if quick is not None else _general(block)) == _general(block)


@pytest.mark.parametrize("data", DELTAS_IN_LANE + DELTAS_PARSED)
def test_message_delta_read_from_its_bytes_means_what_its_parse_means(data: bytes) -> None:
    block = b"event: message_delta\n" + data
    in_lane = anthropic_stream._MESSAGE_DELTA_DATA(data) is not None
    assert in_lane == (data in DELTAS_IN_LANE)
    quick = _quick(block)
    assert (quick if quick is not None else _general(block)) == _general(block)


def test_a_lane_layout_under_another_event_name_is_read_by_its_type() -> None:
    """The lanes are keyed by the event line; a block named otherwise is parsed whole."""
    block = b"event: message_delta\n" + STARTS_IN_LANE[0]
    assert _quick(block) == _general(block)


def test_a_skipped_block_makes_the_decoders_own_set() -> None:
    """The skipped indices start as the class's empty set; skipping one gives a decoder its own."""
    first, second = AnthropicDecoder(), AnthropicDecoder()
    event = event_of(
        b'event: content_block_start\ndata: {"type":"content_block_start","index":2,'
        b'"content_block":{"type":"some_future_block"}}'
    )
    assert event is not None
    assert first.decode(event) == []
    stop = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":2}'
    assert first.quick_of(stop) == []
    assert second.quick_of(stop) != []
