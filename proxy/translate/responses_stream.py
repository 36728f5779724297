"""OpenAI Responses API streams <-> neutral stream events.

The encoder emits the documented order: response.created, response.in_progress, then for each
output item output_item.added -> (content_part.added ->) deltas -> ...done -> output_item.done,
then response.completed / response.incomplete / response.failed; sequence_number strictly
increasing. An item is only ever closed after it was opened.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from driftgate.proxy.errors import type_for_status
from driftgate.proxy.sse import SSEEvent, Usage, responses_usage
from driftgate.proxy.translate import responses_events as fixed
from driftgate.proxy.translate.input_checks import decode_json, obj_at
from driftgate.proxy.translate.ir import (
    ArgumentsDelta,
    BlockStart,
    BlockStop,
    StopReason,
    StreamDone,
    StreamEnd,
    StreamError,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
)
from driftgate.proxy.translate.json_field_stream import StringFieldStream
from driftgate.proxy.translate.responses_request import (
    CUSTOM_INPUT,
    REDACTED_PREFIX,
    custom_tool_names,
)
from driftgate.proxy.translate.responses_response import (
    INCOMPLETE_REASONS,
    finish,
    message_item,
    new_id,
    reasoning_item,
    skeleton,
    usage_json,
)
from driftgate.proxy.translate.stream_events import MalformedStream, TextLane


class _Item:
    """One output item being streamed.

    A plain class whose rarely set fields default on the class: a slotted dataclass's __init__
    setting all thirteen cost more than the rest of opening a message item."""

    name = ""
    call_id = ""
    signature: str | None = None
    redacted: str | None = None  # a redacted thinking block's data
    summary_open = False
    added = False  # output_item.added went out
    delta_bytes: tuple[bytes, bytes] | None = None  # the prebuilt parts of its delta events
    text_delta = b""  # an added message's output_text.delta, but for (%d seq, %b delta)
    where = b""  # an added message's `,"item_id":"...","output_index":N`
    field: StringFieldStream | None = None

    def __init__(self, kind: str, output_index: int, item_id: str) -> None:
        self.kind = kind  # "text" | "tool_call" | "custom" | "thinking"
        self.output_index = output_index
        self.item_id = item_id
        self.chunks: list[str] = []


_DELTA_EVENT = {
    "text": "response.output_text.delta",
    "thinking": "response.reasoning_summary_text.delta",
    "tool_call": "response.function_call_arguments.delta",
    "custom": "response.custom_tool_call_input.delta",
}
_DELTA_END = {
    "text": b',"logprobs":[]}\n\n',
    "thinking": b"}\n\n",
    "tool_call": b"}\n\n",
    "custom": b"}\n\n",
}


class ResponsesEncoder:
    """Neutral events -> Responses API stream events."""

    # The state every stream starts in (on the class: each set in __init__ costs).
    _seq = 0
    _custom: frozenset[str] | None = None  # the request's custom tools, read at the first call
    # The Response object's bytes, written from templates (responses_events) once the stream
    # starts: up to its status, its model as JSON, what it echoes of the request.
    _head = _model_json = _echo = b""
    _kept: dict[str, Any] | None = None  # the Response object as it ended, once read
    _error: dict[str, str] | None = None  # what failed it
    _started = False
    _stop: StopReason | None = None
    _status = "in_progress"
    finished = False

    def __init__(
        self,
        model: str,
        usage: Usage,
        include_usage: bool,
        clock: Callable[[], float],
        request: dict[str, Any] | None = None,
    ) -> None:
        self._usage = usage  # the translator's running total, shared
        self._request = request
        self._id = new_id("resp_")
        self._created = int(clock())
        self._model = model
        self._output: list[bytes] = []  # finished output items' bytes, in order
        # The same items for the Response object's dict: a message as (its id, its text), made
        # into its dict only when a stored turn reads it (parsing the bytes would cost more).
        self._items: list[dict[str, Any] | tuple[str, str]] = []
        self._open: dict[int, _Item] = {}

    @property
    def succeeded(self) -> bool:
        """The stream ended completed or incomplete (not failed, not cut short)."""
        return self.finished and self._status in ("completed", "incomplete")

    @property
    def response_id(self) -> str:
        """The id the client sees."""
        return self._id

    @property
    def response(self) -> dict[str, Any]:
        """The Response object as the client last saw it (a stored turn keeps it)."""
        if self._kept is not None:
            return self._kept
        body = skeleton(self._id, self._model, self._request, self._created)
        if not self.finished:
            return body
        status = self._status
        if status == "failed":
            body["status"] = status
            body["error"] = self._error
            body["output"] = self.output
            body["usage"] = usage_json(self._usage)
        else:
            finish(body, self._stop, self._usage)
            body["output"] = self.output
        self._kept = body
        return body

    @property
    def output_bytes(self) -> list[bytes]:
        """The finished output items' JSON, as the client was sent each (orjson's of `output`)."""
        return self._output

    @property
    def output(self) -> list[dict[str, Any]]:
        """The finished output items, in order."""
        out: list[dict[str, Any]] = []
        for item in self._items:  # a loop: a comprehension is a call of its own
            out.append(message_item(*item) if isinstance(item, tuple) else item)
        return out

    def _fixed_parts(self) -> None:
        """The parts of the Response object every event that carries it repeats, written once."""
        self._head = fixed.response_head(self._id, self._created)
        self._model_json = orjson.dumps(self._model)
        self._echo = fixed.echo_bytes(self._request)

    def _ev(self, kind: str, body: dict[str, Any]) -> bytes:
        seq = self._seq
        self._seq = seq + 1
        # orjson never writes a raw newline, so one data: line always holds the event.
        data = orjson.dumps({"type": kind, "sequence_number": seq, **body})
        return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"

    def _delta(self, item: _Item, text: str) -> bytes:
        """A delta event from the item's prebuilt head and tail around one JSON string.

        The deltas are most of a stream's events; building and serialising a dict for each
        cost more than the rest of the encoder. The bytes equal `_ev`'s for the same event.
        """
        seq = self._seq
        self._seq = seq + 1
        head, tail = item.delta_bytes or self._delta_bytes(item)
        return head + str(seq).encode() + tail + orjson.dumps(text) + _DELTA_END[item.kind]

    def _delta_bytes(self, item: _Item) -> tuple[bytes, bytes]:
        kind = _DELTA_EVENT[item.kind]
        fields = {"item_id": item.item_id, "output_index": item.output_index}
        if item.kind == "text":
            fields["content_index"] = 0
        elif item.kind == "thinking":
            fields["summary_index"] = 0
        middle = orjson.dumps(fields)[1:-1]
        head = (
            b"event: "
            + kind.encode()
            + b'\ndata: {"type":"'
            + kind.encode()
            + b'","sequence_number":'
        )
        item.delta_bytes = (head, b"," + middle + b',"delta":')
        return item.delta_bytes

    def text(self, index: int, text: str, quoted: bytes | None) -> bytes | None:
        """An output_text.delta for an open message item; None when the general path must run."""
        item = self._open.get(index)
        if item is None or not item.text_delta or not text:
            return None
        item.chunks.append(text)
        seq = self._seq
        self._seq = seq + 1
        return item.text_delta % (seq, quoted or orjson.dumps(text))

    def texts(self, index: int, quoted: list[bytes], texts: list[str]) -> bytes | None:
        """A run of output_text.delta events for an open message item (non-empty texts); None
        when the general path must run."""
        item = self._open.get(index)
        if item is None or not item.text_delta:
            return None
        item.chunks.extend(texts)
        seq = self._seq
        template = item.text_delta
        if len(quoted) == 1:
            self._seq = seq + 1
            return template % (seq, quoted[0])
        out = []
        for one in quoted:
            out.append(template % (seq, one))
            seq += 1
        self._seq = seq
        return b"".join(out)

    def encode(self, ev: StreamEvent) -> bytes:
        """Client bytes for one neutral event."""
        if type(ev) is TextDelta and ev.text:
            written = self.text(ev.index, ev.text, None)
            if written is not None:  # most of a stream: straight to its bytes
                return written
        start = type(ev) is StreamStart
        if self._started:
            return b"" if start else self._encode(ev)
        self._started = True
        self._seq = 2  # nothing went out before these two
        self._fixed_parts()
        head = fixed.started(self._head, self._model_json, self._echo)
        return head if start else head + self._encode(ev)

    def _encode(self, ev: StreamEvent) -> bytes:
        # One lookup by the event's type instead of a chain of isinstance checks.
        return _WRITERS[type(ev)](self, ev)

    def _text_delta(self, ev: TextDelta) -> bytes:
        item = self._item(ev.index, "text")
        return self._open_block(item) + self._text(item, ev.text)

    def _arguments_delta(self, ev: ArgumentsDelta) -> bytes:
        call = self._open.get(ev.index)
        if call is None or not ev.fragment:
            return b""
        return self._arguments(call, ev.fragment)

    def _thinking_delta(self, ev: ThinkingDelta) -> bytes:
        item = self._item(ev.index, "thinking")
        if ev.redacted is not None:
            item.redacted = (item.redacted or "") + ev.redacted
            return self._open_block(item)
        if ev.signature is not None:
            item.signature = (item.signature or "") + ev.signature
            return self._open_block(item)
        return self._open_block(item) + self._summary(item, ev.text)

    def _block_start(self, ev: BlockStart) -> bytes:
        if ev.index in self._open:
            return b""
        if ev.kind == "tool_call":
            if self._custom is None:
                request = self._request
                self._custom = custom_tool_names(request) if request else frozenset()
            custom = (ev.tool_name or "") in self._custom
            item = _Item("custom" if custom else "tool_call", len(self._output) + len(self._open),
                         new_id("ctc_" if custom else "fc_"))  # fmt: skip
            item.name = ev.tool_name or ""
            item.call_id = ev.tool_id or new_id("call_")
            if custom:
                item.field = StringFieldStream(CUSTOM_INPUT)
        elif ev.kind == "text":  # every answer's message item: opened here at once
            index = len(self._output) + len(self._open)
            item = self._open[ev.index] = _Item("text", index, new_id("msg_"))
            item.added = True
            seq = self._seq
            self._seq = seq + 2
            item.where, item.text_delta, events = fixed.text_open(seq, index, item.item_id.encode())
            return events
        else:
            item = _Item(ev.kind, len(self._output) + len(self._open), new_id("rs_"))
        self._open[ev.index] = item
        return self._open_block(item)

    def _block_stop(self, ev: BlockStop) -> bytes:
        # A stop for a block never started (a tool-call-only answer, say) closes nothing.
        ended = self._open.pop(ev.index, None)
        return b"" if ended is None else self._close(ended)

    def _stream_end(self, ev: StreamEnd) -> bytes:
        self._stop = ev.stop_reason
        return self._close_all()

    def _stream_done(self, ev: StreamDone) -> bytes:
        return self._close_all() + self._complete()

    def _stream_error(self, ev: StreamError) -> bytes:
        return self.fail(ev.message, type_for_status(ev.status, "responses"))

    def _stream_start(self, ev: StreamStart) -> bytes:
        return b""  # response.created went out already

    def _item(self, index: int, kind: str) -> _Item:
        """The open item at `index`, opening one when the source sent no start."""
        item = self._open.get(index)
        if item is None:
            item = self._open[index] = _Item(
                kind,
                len(self._output) + len(self._open),
                new_id("msg_" if kind == "text" else "rs_"),
            )
        return item

    def _open_block(self, item: _Item) -> bytes:
        """output_item.added (and the content part of a message), once per item."""
        if item.added:
            return b""
        item.added = True
        index = item.output_index
        if item.kind == "text":
            # Message items open and close every answer: written from templates.
            seq = self._seq
            self._seq = seq + 2
            item.where, item.text_delta, events = fixed.text_open(seq, index, item.item_id.encode())
            return events
        if item.kind == "thinking":
            added = reasoning_item(item.item_id, "", None)
        else:
            added = self._call(item, "", "in_progress")
        return self._item_event(False, index, orjson.dumps(added))

    def _item_event(self, done: bool, index: int, item: bytes) -> bytes:
        seq = self._seq
        self._seq = seq + 1
        return fixed.item_event(done, seq, index, item)

    def _call(self, item: _Item, value: str, status: str) -> dict[str, Any]:
        if item.kind == "custom":
            return {"id": item.item_id, "type": "custom_tool_call", "status": status,
                    "call_id": item.call_id, "name": item.name, "input": value}  # fmt: skip
        return {"id": item.item_id, "type": "function_call", "status": status,
                "call_id": item.call_id, "name": item.name, "arguments": value}  # fmt: skip

    def _text(self, item: _Item, text: str) -> bytes:
        if not text:
            return b""
        item.chunks.append(text)
        return self._delta(item, text)

    def _summary(self, item: _Item, text: str) -> bytes:
        if not text:
            return b""
        head = b""
        if not item.summary_open:
            item.summary_open = True
            part = {"type": "summary_text", "text": ""}
            head = self._ev("response.reasoning_summary_part.added", {"item_id": item.item_id,
                            "output_index": item.output_index, "summary_index": 0, "part": part})  # fmt: skip
        item.chunks.append(text)
        return head + self._delta(item, text)

    def _arguments(self, item: _Item, fragment: str) -> bytes:
        if item.kind == "custom" and item.field is not None:
            text = item.field.feed(fragment)
            if not text:
                return b""
            item.chunks.append(text)
            return self._delta(item, text)
        if item.kind != "tool_call":
            return b""
        item.chunks.append(fragment)
        return self._delta(item, fragment)

    def _close(self, item: _Item) -> bytes:
        # A block that streamed nothing is still shown whole.
        out = b"" if item.added else self._open_block(item)
        index = item.output_index
        text = "".join(item.chunks)
        if item.kind == "text":
            seq = self._seq
            self._seq = seq + 3
            iid = item.item_id.encode()
            events, message = fixed.text_close(seq, index, iid, item.where, orjson.dumps(text))
            self._output.append(message)
            self._items.append((item.item_id, text))
            return out + events if out else events
        base = {"item_id": item.item_id, "output_index": index}
        if item.kind == "thinking":
            if item.summary_open:
                out += self._ev(
                    "response.reasoning_summary_text.done",
                    {**base, "summary_index": 0, "text": text},
                )
                out += self._ev("response.reasoning_summary_part.done",
                                {**base, "summary_index": 0, "part": {"type": "summary_text", "text": text}})  # fmt: skip
            done = reasoning_item(item.item_id, text, item.signature, item.redacted)
        elif item.kind == "custom":
            out += self._ev("response.custom_tool_call_input.done", {**base, "input": text})
            done = self._call(item, text, "completed")
        else:
            args = text or "{}"
            out += self._ev(
                "response.function_call_arguments.done",
                {**base, "name": item.name, "arguments": args},
            )
            done = self._call(item, args, "completed")
        written = orjson.dumps(done)
        self._output.append(written)
        self._items.append(done)
        return out + self._item_event(True, index, written)

    def _close_all(self) -> bytes:
        if not self._open:
            return b""
        if len(self._open) == 1:  # the usual case: one message left open
            (item,) = self._open.values()
            self._open.clear()
            return self._close(item)
        items = sorted(self._open.values(), key=_output_index)
        self._open.clear()
        return b"".join(self._close(i) for i in items)

    def _complete(self) -> bytes:
        if self.finished:
            return b""
        stop = self._stop
        reason = INCOMPLETE_REASONS.get(stop) if stop else None
        usage = fixed.usage_bytes(self._usage)
        seq = self._seq
        out = fixed.ended(
            seq, self._head, reason, self._model_json, self._output, usage, self._echo
        )
        # Finished only once the last event is built: should building it fail, `fail` still
        # ends the stream with response.failed.
        self.finished = True
        self._status = "incomplete" if reason else "completed"
        self._seq = seq + 1
        return out

    def fail(self, message: str, code: str = "server_error") -> bytes:
        """response.failed: the error, the items finished so far and the usage seen so far."""
        if self.finished:
            return b""
        head = b""
        if not self._started:
            self._started = True
            self._fixed_parts()
            head = fixed.created(fixed.in_progress(self._head, self._model_json, self._echo))
            self._seq = 1
        self.finished = True
        self._error = {"code": code, "message": message}
        error = orjson.dumps(self._error)
        usage = fixed.usage_bytes(self._usage)
        response = fixed.failed(
            self._head, error, self._model_json, self._output, usage, self._echo
        )
        self._status = "failed"
        seq = self._seq
        self._seq = seq + 1
        return head + fixed.final(b"response.failed", seq, response)


def _output_index(item: _Item) -> int:
    return item.output_index


# The encoder's writer for each neutral event type.
_WRITERS: dict[type, Callable[[ResponsesEncoder, Any], bytes]] = {
    TextDelta: ResponsesEncoder._text_delta,
    ArgumentsDelta: ResponsesEncoder._arguments_delta,
    ThinkingDelta: ResponsesEncoder._thinking_delta,
    BlockStart: ResponsesEncoder._block_start,
    BlockStop: ResponsesEncoder._block_stop,
    StreamStart: ResponsesEncoder._stream_start,
    StreamEnd: ResponsesEncoder._stream_end,
    StreamDone: ResponsesEncoder._stream_done,
    StreamError: ResponsesEncoder._stream_error,
}


class ResponsesDecoder:
    """Upstream Responses stream events -> neutral events (output items become blocks)."""

    lane: TextLane | None = None  # no text-delta lane: every event takes the general path

    def __init__(self) -> None:
        self._blocks: dict[str, int] = {}  # item id -> block index

    def decode(self, event: SSEEvent) -> list[StreamEvent]:
        """The neutral events one Responses event means."""
        obj = decode_json(event.data)
        if not isinstance(obj, dict):
            raise MalformedStream(
                f"upstream sent an event that is not a JSON object: {event.data[:80]!r}"
            )
        kind = obj.get("type") or event.event
        if kind == "response.created":
            rid = obj_at(obj, "response").get("id")
            return [StreamStart(rid if isinstance(rid, str) else None, Usage())]
        if kind == "response.output_item.added":
            item = obj_at(obj, "item")
            index = self._blocks.setdefault(str(item.get("id")), len(self._blocks))
            itype = item.get("type")
            if itype in ("function_call", "custom_tool_call"):
                return [
                    BlockStart(
                        index, "tool_call", str(item.get("call_id", "")), str(item.get("name", ""))
                    )
                ]
            return [BlockStart(index, "thinking" if itype == "reasoning" else "text")]
        index = self._blocks.get(str(obj.get("item_id")), 0)
        if kind == "response.output_text.delta":
            return [TextDelta(index, str(obj.get("delta", "")))]
        if kind == "response.function_call_arguments.delta":
            return [ArgumentsDelta(index, str(obj.get("delta", "")))]
        if kind == "response.reasoning_summary_text.delta":
            return [ThinkingDelta(index, text=str(obj.get("delta", "")))]
        if kind == "response.output_item.done":
            item = obj_at(obj, "item")
            index = self._blocks.get(str(item.get("id")), 0)
            enc = item.get("encrypted_content")
            sig: list[StreamEvent] = []
            if isinstance(enc, str) and enc.startswith(REDACTED_PREFIX):
                sig.append(ThinkingDelta(index, redacted=enc[len(REDACTED_PREFIX) :]))
            elif isinstance(enc, str) and enc:
                sig.append(ThinkingDelta(index, signature=enc))
            return [*sig, BlockStop(index)]
        if kind in ("response.completed", "response.incomplete"):
            resp = obj_at(obj, "response")
            reason = obj_at(resp, "incomplete_details").get("reason")
            stop: StopReason = "stop"
            if kind == "response.incomplete":
                stop = "content_filter" if reason == "content_filter" else "length"
            return [StreamEnd(stop, responses_usage(resp.get("usage"))), StreamDone()]
        if kind in ("response.failed", "error"):
            err = obj_at(obj_at(obj, "response"), "error") or obj
            return [StreamError(str(err.get("message") or "upstream reported an error mid-stream"))]
        return []
