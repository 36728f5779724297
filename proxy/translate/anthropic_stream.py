"""Anthropic Messages streaming events <-> neutral stream events."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from driftgate.proxy.errors import ANTHROPIC_TYPE_BY_STATUS, type_for_status
from driftgate.proxy.sse import SSEEvent, Usage, anthropic_usage, error_end
from driftgate.proxy.translate.anthropic_response import (
    STOP_FROM_ANTHROPIC,
    STOP_TO_ANTHROPIC,
    new_message_id,
)
from driftgate.proxy.translate.input_checks import decode_json, obj_at
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
from driftgate.proxy.translate.stream_events import MalformedStream, TextLane

_STATUS_BY_TYPE = {t: s for s, t in ANTHROPIC_TYPE_BY_STATUS.items()}
_STOP_BYTES = {reason: stop.encode() for reason, stop in STOP_TO_ANTHROPIC.items()}
# A text delta as the API writes it (compact, keys in this order), read without parsing the object.
_DELTA_IN_PREFIX = '{"type":"content_block_delta","index":'
_DELTA_IN_MID = ',"delta":{"type":"text_delta","text":'
_PREFIX_LEN = len(_DELTA_IN_PREFIX)
_MID_LEN = len(_DELTA_IN_MID)
# The same event as its raw SSE block (event line, data line), for the fast lane.
_RAW_PREFIX = b"event: content_block_delta\ndata: " + _DELTA_IN_PREFIX.encode()
_RAW_PREFIX_LEN = len(_RAW_PREFIX)
_REST = _DELTA_IN_MID.encode()[1:]  # after the index and its comma
_REST_LEN = len(_REST)
_INDEX = {str(i).encode(): i for i in range(64)}  # int() of bytes costs more than this lookup
# The lane (see TextLane) of a text block's deltas, by its index.
_LANES = {
    i: (
        _RAW_PREFIX + digits + b"," + _REST,
        _RAW_PREFIX_LEN + len(digits) + 1 + _REST_LEN,
        b"}}",
        -2,
        i,
    )
    for digits, i in _INDEX.items()
}
_PING_DATA = (b'data: {"type": "ping"}', b'data: {"type":"ping"}')
_STOP = b'data: {"type":"content_block_stop","index":'
_STOP_LEN = len(_STOP)
_MESSAGE_STOP = b'data: {"type":"message_stop"}'
# A text block's start, as the API writes it: nothing in it but its index.
_START = b'data: {"type":"content_block_start","index":'
_START_LEN = len(_START)
_TEXT_START_TAIL = b',"content_block":{"type":"text","text":""}}'
_TEXT_START_TAIL_LEN = -len(_TEXT_START_TAIL)
_NOTHING: list[StreamEvent] = []  # never appended to
_NONE_SKIPPED: frozenset[int] = frozenset()
# Every stream's message_start and message_delta in the layouts the API writes them (compact,
# keys in its order, the usage counts it sends), matched whole and read from their bytes: parsing
# them whole was the largest fixed cost of a translated stream. Only valid JSON matches (no
# escapes, no duplicate keys, numbers as JSON writes them, short enough for 64 bits), so a match
# means what `_message_start` and `_message_delta` read from it; any other layout is parsed.
_PARTS = {
    b"n": rb"(0|[1-9][0-9]{0,14})",  # a count, as JSON writes it
    b"plain": rb'"[ !#-\[\]-~]{0,200}"',  # printable ASCII but the quote and the backslash
}
_MESSAGE_START_DATA = re.compile(
    rb'data: \{"type":"message_start","message":\{(?:"model":%(plain)b,)?'
    rb'"id":"([A-Za-z0-9_-]{1,200})","type":"message","role":"assistant",(?:"model":%(plain)b,)?'
    rb'"content":\[\],"stop_reason":null,"stop_sequence":null,"usage":\{"input_tokens":%(n)b,'
    rb'(?:"cache_creation_input_tokens":%(n)b,"cache_read_input_tokens":%(n)b,'
    rb'(?:"cache_creation":\{"ephemeral_5m_input_tokens":[0-9]{1,15},'
    rb'"ephemeral_1h_input_tokens":[0-9]{1,15}\},)?)?'
    rb'"output_tokens":%(n)b(?:,"service_tier":"[a-z_]{1,40}")?\}\}\}' % _PARTS
).fullmatch
_MESSAGE_DELTA_DATA = re.compile(
    rb'data: \{"type":"message_delta","delta":\{"stop_reason":(?:"([a-z_]{1,40})"|null),'
    rb'"stop_sequence":null\},"usage":\{(?:"input_tokens":%(n)b,)?'
    rb'(?:"cache_creation_input_tokens":%(n)b,)?(?:"cache_read_input_tokens":%(n)b,)?'
    rb'"output_tokens":%(n)b\}\}' % _PARTS
).fullmatch


class AnthropicDecoder:
    """Upstream Anthropic events -> neutral events; blocks no other dialect can show are skipped."""

    def __init__(self) -> None:
        # The skipped blocks' indices: a set of its own once the first is skipped (most streams
        # skip none).
        self._skipped: frozenset[int] | set[int] = _NONE_SKIPPED
        # The last text delta's block bytes before its string, their length, its end and its
        # index: the next deltas of the same block start with them (see TextLane).
        self.lane: TextLane | None = None

    def decode(self, event: SSEEvent) -> list[StreamEvent]:
        """The neutral events one Anthropic SSE event means."""
        data = event.data
        if data.startswith(_DELTA_IN_PREFIX):
            fast = self._text_delta(data)
            if fast is not None:
                return [fast]
        elif event.event == "ping":
            return []
        obj = decode_json(data)
        if type(obj) is not dict:
            raise MalformedStream(
                f"upstream sent an event whose data is not a JSON object: {event.data[:80]!r}"
            )
        return self._object(obj, event.event)

    def _object(self, obj: dict[str, Any], name: str | None) -> list[StreamEvent]:
        """The neutral events of one event's parsed data (`name`: its event: line)."""
        kind = obj.get("type") or name
        read = _READERS.get(kind) if type(kind) is str else None
        return [] if read is None else read(self, obj)  # [] for pings and newer event types

    def text_of(self, block: bytes) -> tuple[int, str, bytes | None] | None:
        """A text delta in the API's own layout, straight from its raw SSE block; else None.

        Only the text is parsed (as a JSON string). When the JSON string is as long as the text
        plus its quotes it has no escape and no multi-byte character: it is byte for byte what
        orjson writes for the text, so an encoder may copy it.
        """
        lane = self.lane
        if lane is not None and block.startswith(lane[0]) and block.endswith(b"}}"):
            index = lane[4]
            quoted = block[lane[1] : -2]
        else:
            if block[:_RAW_PREFIX_LEN] != _RAW_PREFIX:
                return None
            digits, _, rest = block[_RAW_PREFIX_LEN:].partition(b",")
            found = _INDEX.get(digits)
            if found is None:
                if not digits.isdigit():
                    return None
                found = int(digits)
            index = found
            if rest[:_REST_LEN] != _REST or rest[-2:] != b"}}" or index in self._skipped:
                return None
            quoted = rest[_REST_LEN:-2]
            head = block[: -len(quoted) - 2]
            self.lane = (head, len(head), b"}}", -2, index)
        try:
            text = orjson.loads(quoted)
        except orjson.JSONDecodeError:
            return None
        if type(text) is not str:
            return None
        return index, text, quoted if len(quoted) == len(text) + 2 else None

    def quick_of(self, block: bytes) -> list[StreamEvent] | None:
        """The events of a block in the usual layout (an event line, then one data line holding
        an object), read from its raw bytes; else None (the general path reads it).

        Pings and stops are recognised by their bytes; the other events are parsed once.
        """
        head, _, data = block.partition(b"\n")
        name = _EVENT_NAMES.get(head)
        if name is None:
            return None
        if name == "ping":
            return _NOTHING if data in _PING_DATA else None
        if (
            name == "content_block_start"
            and data[:_START_LEN] == _START
            and data.endswith(_TEXT_START_TAIL)
        ):
            index = _INDEX.get(data[_START_LEN:_TEXT_START_TAIL_LEN])
            if index is not None:
                # Its deltas, as text_of would find them (none of a skipped index's may).
                self.lane = None if index in self._skipped else _LANES[index]
                return [BlockStart(index, "text")]
        if name == "content_block_stop":
            if data[:_STOP_LEN] == _STOP and data[-1:] == b"}":
                digits = data[_STOP_LEN:-1]
                index = _INDEX.get(digits)
                if index is None:
                    if not digits.isdigit():
                        return None
                    index = int(digits)
                return _NOTHING if index in self._skipped else [BlockStop(index)]
        elif name == "message_stop" and data == _MESSAGE_STOP:
            return [StreamDone()]
        elif name == "message_delta":
            found = _MESSAGE_DELTA_DATA(data)
            if found is not None:
                stop, i, w, r, o = found.groups()
                reason = STOP_FROM_ANTHROPIC.get(stop.decode(), "stop") if stop else None
                return [StreamEnd(reason, _usage(i, o, r, w))]
        elif name == "message_start":
            found = _MESSAGE_START_DATA(data)
            if found is not None:
                msg_id, i, w, r, o = found.groups()
                return [StreamStart(msg_id.decode(), _usage(i, o, r, w))]
        if data[:7] != b"data: {":
            return None
        try:
            obj = orjson.loads(
                data[6:]
            )  # a second data line is not JSON: the general path joins it
        except orjson.JSONDecodeError:
            return None  # the general path says what is wrong with it
        return self._object(obj, name)

    def _message_start(self, obj: dict[str, Any]) -> list[StreamEvent]:
        message = obj.get("message")
        if type(message) is not dict:
            return [StreamStart(None, Usage())]
        msg_id = message.get("id")
        usage = anthropic_usage(message.get("usage"))
        return [StreamStart(msg_id if type(msg_id) is str else None, usage)]

    def _message_delta(self, obj: dict[str, Any]) -> list[StreamEvent]:
        delta = obj_at(obj, "delta")
        stop = delta.get("stop_reason")
        seq = delta.get("stop_sequence")
        return [
            StreamEnd(
                STOP_FROM_ANTHROPIC.get(stop, "stop") if isinstance(stop, str) else None,
                anthropic_usage(obj.get("usage")),
                seq if isinstance(seq, str) else None,
            )
        ]

    def _block_delta(self, obj: dict[str, Any]) -> list[StreamEvent]:
        # Most of a stream: text deltas, read without the general path's checks.
        delta = obj.get("delta")
        index = obj.get("index")
        if (
            type(delta) is dict
            and type(index) is int
            and delta.get("type") == "text_delta"
            and index not in self._skipped
        ):
            text = delta.get("text")
            return [TextDelta(index, text if type(text) is str else "")]
        return self._delta(obj)

    def _block_stop(self, obj: dict[str, Any]) -> list[StreamEvent]:
        index = _index(obj)
        return [] if index in self._skipped else [BlockStop(index)]

    def _message_stop(self, obj: dict[str, Any]) -> list[StreamEvent]:
        return [StreamDone()]

    def _error(self, obj: dict[str, Any]) -> list[StreamEvent]:
        err = obj_at(obj, "error")
        text = str(err.get("message") or "upstream reported an error mid-stream")
        return [StreamError(text, _STATUS_BY_TYPE.get(str(err.get("type")), 500))]

    def _text_delta(self, data: str) -> TextDelta | None:
        """A text delta in the API's own layout, reading only its text as JSON; else None.

        Most of a stream is text deltas, and parsing each whole object was most of its cost. Any
        other layout (keys reordered, spaces, more fields) is left to the general path.
        """
        comma = data.find(",", _PREFIX_LEN)
        digits = data[_PREFIX_LEN:comma]
        if not (digits.isdigit() and data.startswith(_DELTA_IN_MID, comma) and data.endswith("}}")):
            return None
        index = int(digits)
        if index in self._skipped:
            return None
        try:
            text = orjson.loads(data[comma + _MID_LEN : -2])
        except orjson.JSONDecodeError:
            return None
        return TextDelta(index, text) if type(text) is str else None

    def _start(self, obj: dict[str, Any]) -> list[StreamEvent]:
        index = _index(obj)
        block = obj_at(obj, "content_block")
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            start: list[StreamEvent] = [BlockStart(index, "text")]
            return [*start, TextDelta(index, text)] if isinstance(text, str) and text else start
        if kind == "tool_use":
            return [
                BlockStart(index, "tool_call", str(block.get("id", "")), str(block.get("name", "")))
            ]
        if kind == "thinking":
            return [BlockStart(index, "thinking")]
        if kind == "redacted_thinking":  # no deltas: its data comes whole with its start
            data = block.get("data")
            return [BlockStart(index, "thinking"),
                    ThinkingDelta(index, redacted=data if isinstance(data, str) else "")]  # fmt: skip
        if type(self._skipped) is frozenset:
            self._skipped = set()
        self._skipped.add(index)  # type: ignore[union-attr]
        self.lane = None  # its deltas are skipped: not one may take the lane
        return []

    def _delta(self, obj: dict[str, Any]) -> list[StreamEvent]:
        index = _index(obj)
        delta = obj_at(obj, "delta")
        if index in self._skipped:
            return []
        kind = delta.get("type")
        if kind == "text_delta":
            return [TextDelta(index, str(delta.get("text", "")))]
        if kind == "input_json_delta":
            return [ArgumentsDelta(index, str(delta.get("partial_json", "")))]
        if kind == "thinking_delta":
            return [ThinkingDelta(index, text=str(delta.get("thinking", "")))]
        if kind == "signature_delta":
            return [ThinkingDelta(index, signature=str(delta.get("signature", "")))]
        return []


# The events read, by type; any other type (ping, newer ones) means nothing to another dialect.
_READERS: dict[str, Callable[[AnthropicDecoder, dict[str, Any]], list[StreamEvent]]] = {
    "content_block_delta": AnthropicDecoder._block_delta,
    "content_block_start": AnthropicDecoder._start,
    "content_block_stop": AnthropicDecoder._block_stop,
    "message_start": AnthropicDecoder._message_start,
    "message_delta": AnthropicDecoder._message_delta,
    "message_stop": AnthropicDecoder._message_stop,
    "error": AnthropicDecoder._error,
}
# An event line -> the event's name, for the events read from their raw bytes.
_EVENT_NAMES = {f"event: {name}".encode(): name for name in (*_READERS, "ping")}


def _usage(i: bytes | None, o: bytes, r: bytes | None, w: bytes | None) -> Usage:
    """Usage from the counts' digits a layout matched (a count it does not hold is 0)."""
    return Usage(int(i) if i else 0, int(o), int(r) if r else 0, int(w) if w else 0)


def _index(obj: dict[str, Any]) -> int:
    index = obj.get("index")
    if not isinstance(index, int):
        raise MalformedStream(f"upstream {obj.get('type')} event has no integer index")
    return index


# A text delta is most of a stream: its bytes are put together around the one JSON string in it
# (the same bytes orjson writes for the whole object).
_TEXT_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_TEXT_DELTA_MID = b',"delta":{"type":"text_delta","text":'
_TEXT_DELTA_TAIL = b"}}\n\n"


# Its bytes before the text for the usual block indices (formatting the index costs as much as
# the rest of the event).
def _text_delta_head(index: int) -> bytes:
    return b"%b%d%b" % (_TEXT_DELTA_HEAD, index, _TEXT_DELTA_MID)


_TEXT_DELTA_HEADS = {i: _text_delta_head(i) for i in range(64)}
# Events with nothing variable but an index, written as orjson writes their objects.
_BLOCK_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":%d}\n\n'
_TEXT_START = (
    b'event: content_block_start\ndata: {"type":"content_block_start","index":%d,'
    b'"content_block":{"type":"text","text":""}}\n\n'
)
_MESSAGE_STOP_EVENT = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
# Every other delta and block start: fixed but for the index, the delta's kind and one value.
_DELTA = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
    b'"delta":{"type":"%b","%b":%b}}\n\n'
)
_TOOL_START = (
    b'event: content_block_start\ndata: {"type":"content_block_start","index":%d,'
    b'"content_block":{"type":"tool_use","id":%b,"name":%b,"input":{}}}\n\n'
)
_THINKING_START = (
    b'event: content_block_start\ndata: {"type":"content_block_start","index":%d,'
    b'"content_block":{"type":"thinking","thinking":"","signature":""}}\n\n'
)
# The message's start and its final delta: fixed but for the id, the model, the stop and the
# counts (every stream has one of each; a dict and orjson for them cost more than the rest).
_MESSAGE_START = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":%b,"type":"message",'
    b'"role":"assistant","model":%b,"content":[],"stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":%d,"output_tokens":%d,"cache_creation_input_tokens":%d,'
    b'"cache_read_input_tokens":%d}}}\n\n'
)
_MESSAGE_DELTA = (
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"%b",'
    b'"stop_sequence":%b},"usage":{"input_tokens":%d,"output_tokens":%d,'
    b'"cache_creation_input_tokens":%d,"cache_read_input_tokens":%d}}\n\n'
)


class AnthropicEncoder:
    """Neutral events -> the Anthropic event sequence, supplying any start/stop the source omitted."""

    def __init__(self, model: str, usage: Usage) -> None:
        self._model = model
        self._usage = usage  # the translator's running total, shared
        self._started = False
        self._ended = False
        self._open: list[int] = []

    def text(self, index: int, text: str, quoted: bytes | None) -> bytes | None:
        """A text delta from its text (and its JSON string, when known); None before the start."""
        if not self._started:
            return None
        head = _TEXT_DELTA_HEADS.get(index) or _text_delta_head(index)
        return b"".join((head, quoted or orjson.dumps(text), _TEXT_DELTA_TAIL))

    def texts(self, index: int, quoted: list[bytes], texts: list[str]) -> bytes | None:
        """A run of text deltas of one block from their JSON strings; None before the start."""
        if not self._started:
            return None
        head = _TEXT_DELTA_HEADS.get(index) or _text_delta_head(index)
        if len(quoted) == 1:
            return b"".join((head, quoted[0], _TEXT_DELTA_TAIL))
        return b"".join((head, (_TEXT_DELTA_TAIL + head).join(quoted), _TEXT_DELTA_TAIL))

    def encode(self, ev: StreamEvent) -> bytes:
        """Client bytes for one neutral event."""
        if type(ev) is TextDelta and self._started:
            head = _TEXT_DELTA_HEADS.get(ev.index) or _text_delta_head(ev.index)
            return b"".join((head, orjson.dumps(ev.text), _TEXT_DELTA_TAIL))
        if type(ev) is StreamError:
            return error_end("anthropic", ev.message, type_for_status(ev.status, "anthropic"))
        # One lookup by the event's type instead of a chain of isinstance checks.
        kind = type(ev)
        write = _WRITERS[kind]
        if self._started or kind is StreamStart:
            return write(self, ev)
        return self._message_start(None) + write(self, ev)

    def _text_delta(self, ev: TextDelta) -> bytes:
        return _DELTA % (ev.index, b"text_delta", b"text", orjson.dumps(ev.text))

    def _arguments_delta(self, ev: ArgumentsDelta) -> bytes:
        fragment = orjson.dumps(ev.fragment)
        return _DELTA % (ev.index, b"input_json_delta", b"partial_json", fragment)

    def _thinking_delta(self, ev: ThinkingDelta) -> bytes:
        if ev.redacted is not None:
            return b""  # its block already opened as plain thinking: nothing to add to it
        if ev.signature is not None:
            signature = orjson.dumps(ev.signature)
            return _DELTA % (ev.index, b"signature_delta", b"signature", signature)
        return _DELTA % (ev.index, b"thinking_delta", b"thinking", orjson.dumps(ev.text))

    def _block_start(self, ev: BlockStart) -> bytes:
        self._open.append(ev.index)
        if ev.kind == "text":
            return _TEXT_START % ev.index
        if ev.kind == "tool_call":
            name = orjson.dumps(ev.tool_name)
            return _TOOL_START % (ev.index, orjson.dumps(ev.tool_id), name)
        return _THINKING_START % ev.index

    def _block_stop(self, ev: BlockStop) -> bytes:
        if ev.index not in self._open:
            return b""
        self._open.remove(ev.index)
        return _BLOCK_STOP % ev.index

    def _stream_start(self, ev: StreamStart) -> bytes:
        return self._message_start(ev.id)

    def _stream_end(self, ev: StreamEnd) -> bytes:
        if self._open:
            return self._close_blocks() + self._message_delta(ev)
        return self._message_delta(ev)

    def _stream_done(self, ev: StreamDone) -> bytes:
        if self._ended:
            return _MESSAGE_STOP_EVENT
        end = self._close_blocks() + self._message_delta(StreamEnd("stop", Usage()))
        return end + _MESSAGE_STOP_EVENT

    def _message_start(self, msg_id: str | None) -> bytes:
        if self._started:
            return b""
        self._started = True
        usage = self._usage  # its counts written into the event's one template
        return _MESSAGE_START % (
            orjson.dumps(msg_id or new_message_id()),
            orjson.dumps(self._model),
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_write_tokens,
            usage.cache_read_tokens,
        )

    def _close_blocks(self) -> bytes:
        out = b"".join(_BLOCK_STOP % i for i in self._open)
        self._open.clear()
        return out

    def _message_delta(self, ev: StreamEnd) -> bytes:
        if self._ended:
            return b""
        self._ended = True
        stop = _STOP_BYTES[ev.stop_reason] if ev.stop_reason else b"end_turn"
        seq = b"null" if ev.stop_sequence is None else orjson.dumps(ev.stop_sequence)
        usage = self._usage
        return _MESSAGE_DELTA % (
            stop,
            seq,
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_write_tokens,
            usage.cache_read_tokens,
        )


# The encoder's writer for each neutral event type but TextDelta's usual case and StreamError.
_WRITERS: dict[type, Callable[[AnthropicEncoder, Any], bytes]] = {
    TextDelta: AnthropicEncoder._text_delta,
    ArgumentsDelta: AnthropicEncoder._arguments_delta,
    ThinkingDelta: AnthropicEncoder._thinking_delta,
    BlockStart: AnthropicEncoder._block_start,
    BlockStop: AnthropicEncoder._block_stop,
    StreamStart: AnthropicEncoder._stream_start,
    StreamEnd: AnthropicEncoder._stream_end,
    StreamDone: AnthropicEncoder._stream_done,
}
