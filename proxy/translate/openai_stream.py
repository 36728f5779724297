"""OpenAI chat.completion.chunk streams <-> neutral stream events."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Literal

import orjson

from driftgate.proxy.errors import OPENAI_TYPE_BY_STATUS, type_for_status
from driftgate.proxy.sse import DONE, SSEEvent, Usage, error_end, openai_usage
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
from driftgate.proxy.translate.openai_chunks import (
    CONTENT_HEAD,
    FINISH_TAILS,
    HEAD,
    ROLE_TAILS,
    USAGE_HEAD,
)
from driftgate.proxy.translate.openai_response import (
    STOP_FROM_OPENAI,
    STOP_TO_OPENAI,
    new_completion_id,
)
from driftgate.proxy.translate.stream_events import MalformedStream, TextLane

_STATUS_BY_TYPE = {t: s for s, t in OPENAI_TYPE_BY_STATUS.items() if s in (429, 500)}
# The counts of a start, and of an end before any usage chunk: all zero. One object for every
# stream (a Usage per stream costs a Python-level __init__); an event's usage is only ever read.
_NO_USAGE = Usage()
_DONE_EVENT = b"data: [DONE]\n\n"
_DONE_BLOCK = b"data: [DONE]"
# The fixed chunks' choices, as orjson writes them (between the chunk's head and its end).
_ROLE_CHOICES = (
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,'
    b'"finish_reason":null}]'
)
_FINISH_CHOICES = b'"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"%b"}]'
_CALL_CHOICES = (
    b'"choices":[{"index":0,"delta":{"tool_calls":[{"index":%d,"id":%b,"type":"function",'
    b'"function":{"name":%b,"arguments":""}}]},"logprobs":null,"finish_reason":null}]'
)
_ARGUMENTS_CHOICES = (
    b'"choices":[{"index":0,"delta":{"tool_calls":[{"index":%d,"function":{"arguments":%b}}]},'
    b'"logprobs":null,"finish_reason":null}]'
)
_USAGE_CHOICES = (
    b'"choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,'
    b'"prompt_tokens_details":{"cached_tokens":%d}}}\n\n'
)
# A chunk's end (with `"usage":null` when the client asked for the usage chunk), a content
# chunk's bytes after its string, and the finish chunk's choices for each stop.
_END = {True: b',"usage":null}\n\n', False: b"}\n\n"}
_TEXT_TAIL = {
    asked: b'},"logprobs":null,"finish_reason":null}]' + end for asked, end in _END.items()
}
_FINISHES: dict[StopReason | None, bytes] = {
    None: _FINISH_CHOICES % b"stop",
    **{stop: _FINISH_CHOICES % finish.encode() for stop, finish in STOP_TO_OPENAI.items()},
}


class OpenAIDecoder:
    """Upstream chunks -> neutral events; content and each tool call become numbered blocks."""

    def __init__(self) -> None:
        self._started = False
        self._next = 0
        self._open: int | None = None
        self._open_kind: str | None = None  # "text" or "thinking" while such a block is open
        self._tools: dict[int, int] = {}  # OpenAI tool_calls[].index -> block index
        self._stop: StopReason | None = None
        self._usage = _NO_USAGE
        # (block, chunk, its plain content or None): the chunk text_of parsed and declined
        self._parsed: tuple[bytes, dict[str, Any], str | None] | None = None
        # (head, tail, len(head), -len(tail)): a content chunk's bytes around its string (_learn)
        self._lane: tuple[bytes, bytes, int, int] | None = None
        self._learning = True  # until a lane is learned, or a probe says there is none
        # That lane while a text block is open (see TextLane); kept by _relane.
        self.lane: TextLane | None = None
        # The first chunk's head, when HEAD took it (see openai_chunks), and its length.
        self._head = b""
        self._head_len = 0
        # (block, its events): a finish or usage chunk text_of read from its bytes; (block, its
        # text): content text_of read from its bytes with no block open. Both for quick_of.
        self._quick: tuple[bytes, list[StreamEvent]] | None = None
        self._opening: tuple[bytes, str] | None = None

    def decode(self, event: SSEEvent) -> list[StreamEvent]:
        """The neutral events one chunk (or [DONE]) means."""
        data = event.data
        # [DONE] is not JSON: a failed parse builds a Python-level exception, so look first.
        obj = None if data == DONE else decode_json(data)
        if type(obj) is not dict:
            if data.strip() == DONE:
                return self._done()
            raise MalformedStream(
                f"upstream sent a chunk that is not a JSON object: {event.data[:80]!r}"
            )
        return self._chunk(obj)

    def _chunk(self, obj: dict[str, Any], plain: bool = True) -> list[StreamEvent]:
        """The neutral events of one parsed chunk (`plain` False: `text_of` found it is not plain
        content, so that is not looked for again)."""
        if "error" in obj:
            return [_error(obj["error"])]
        if plain and self._open_kind == "text":
            # Most of a stream: more content for the open text block, nothing else in the chunk.
            text = _more_text(obj)
            if text is not None:
                return [TextDelta(self._open, text)] if text and self._open is not None else []
        out: list[StreamEvent] = []
        if not self._started:
            self._started = True
            out.append(
                StreamStart(obj["id"] if isinstance(obj.get("id"), str) else None, _NO_USAGE)
            )
        if isinstance(obj.get("usage"), dict):
            self._usage = openai_usage(obj["usage"])
        choices = obj.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            self._choice(choices[0], out)
        return out

    def _done(self) -> list[StreamEvent]:
        return [*self._close(), StreamEnd(self._stop or "stop", self._usage), StreamDone()]

    def text_of(self, block: bytes) -> tuple[int, str, bytes | None] | None:
        """A chunk with only more content for the open text block, from its raw SSE block; else None.

        A chunk in the layout `_learn` took from an earlier one (or the role chunk showed) is read
        by its string alone; a finish or usage chunk with the first chunk's head by its bytes after
        it (for `quick_of`); any other is parsed whole. A chunk it parsed and declined is kept for `quick_of`, which the
        translator asks next about the same block: each chunk is parsed once.
        """
        index = self._open
        lane = self._lane
        if lane is not None and self._open_kind == "text" and index is not None:
            head, tail, start, end = lane
            if block[:start] == head and block[end:] == tail:
                quoted = block[start:end]
                try:
                    text = orjson.loads(quoted)
                except orjson.JSONDecodeError:
                    text = None
                if type(text) is str and text:
                    return index, text, quoted if len(quoted) == len(text) + 2 else None
        elif lane is not None and index is None:
            # Content in the lane with no block open: quick_of opens the text block.
            head, tail, start, end = lane
            if block[:start] == head and block[end:] == tail:
                try:
                    text = orjson.loads(block[start:end])
                except orjson.JSONDecodeError:
                    text = None
                if type(text) is str and text:
                    self._opening = (block, text)
                    return None
        if not self._started:
            return None  # the first chunk: quick_of reads its head
        head_len = self._head_len
        if head_len and block[:head_len] == self._head:
            events = self._fixed(block[head_len:])
            if events is not None:
                self._quick = (block, events)
                return None
        if not block.startswith(b"data: {"):
            return None
        try:
            obj = orjson.loads(block[6:])
        except orjson.JSONDecodeError:
            return None
        text = _more_text(obj)
        if text:
            if index is not None and self._open_kind == "text":
                if self._learning:
                    self._learn(block, text)
                return index, text, None
            if self._learning and index is None:
                self._learn(block, text)  # the content chunk that opens the text block teaches too
        self._parsed = (block, obj, text)
        return None

    def _learn(self, block: bytes, text: str) -> None:
        learned = _learn(block, text)
        if learned is not True:  # a lane, or False: there is none to be had
            self._learning = False
            self._lane = learned or None
            self._relane()

    def _relane(self) -> None:
        """The lane for the open block: the learned one while a text block is open, else None."""
        lane, index = self._lane, self._open
        if lane is None or index is None or self._open_kind != "text":
            self.lane = None
        else:
            self.lane = (lane[0], lane[2], lane[1], lane[3], index)

    def quick_of(self, block: bytes) -> list[StreamEvent] | None:
        """The events of the chunk `text_of` just parsed and declined (or read from its bytes), of
        a first chunk in the API's layout (see openai_chunks), or of `[DONE]`; else None."""
        quick = self._quick
        if quick is not None:
            self._quick = None
            if quick[0] is block:
                return quick[1]
        opening = self._opening
        if opening is not None:
            self._opening = None
            if opening[0] is block:
                return self._open_text({}, opening[1])
        parsed = self._parsed
        if parsed is not None:
            self._parsed = None
            if parsed[0] is block:
                text = parsed[2]
                if text and self._open is None:
                    return self._open_text(parsed[1], text)
                return self._chunk(parsed[1], False)
        if block == _DONE_BLOCK:
            return self._done()
        return self._first(block) if not self._started else None

    def _first(self, block: bytes) -> list[StreamEvent] | None:
        """The first chunk: its head, checked once and kept, and its events when it is the role
        chunk (a content chunk's layout follows from its layout); else None."""
        found = HEAD(block)
        if found is None:
            return None
        end = found.end()
        self._head, self._head_len = block[:end], end
        tail = ROLE_TAILS.get(block[end:])
        if tail is None:
            return None
        self._started = True
        head = self._head + CONTENT_HEAD
        self._lane = (head, tail, len(head), -len(tail))
        return [StreamStart(found[1].decode(), _NO_USAGE)]

    def _fixed(self, rest: bytes) -> list[StreamEvent] | None:
        """The events of a finish or usage chunk from its bytes after the head; else None."""
        stop = FINISH_TAILS.get(rest)
        if stop is not None:
            self._stop = stop
            return self._close()
        if rest[:10] == USAGE_HEAD and rest[-1:] == b"}":
            try:
                usage = orjson.loads(rest[10:-1])
            except orjson.JSONDecodeError:
                return None
            if type(usage) is dict:
                self._usage = openai_usage(usage)
                return []
        return None

    def _open_text(self, obj: dict[str, Any], text: str) -> list[StreamEvent]:
        """The events of a chunk of plain content when no block is open: what `_chunk` makes of
        it (the start when it is the first chunk, the text block's start, its text), read once."""
        out: list[StreamEvent] = []
        if not self._started:
            self._started = True
            out.append(
                StreamStart(obj["id"] if isinstance(obj.get("id"), str) else None, _NO_USAGE)
            )
        index = self._open = self._next
        self._next = index + 1
        self._open_kind = "text"
        self._relane()
        out.append(BlockStart(index, "text"))
        out.append(TextDelta(index, text))
        return out

    def _choice(self, choice: dict[str, Any], out: list[StreamEvent]) -> None:
        delta = choice.get("delta")
        if type(delta) is not dict:
            delta = obj_at(choice, "delta")
        # OpenAI-compatible servers (DeepSeek, vLLM, OpenRouter) stream reasoning under these names.
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            out.append(ThinkingDelta(self._block("thinking", out), text=reasoning))
        content = delta.get("content")
        if isinstance(content, str) and content:
            out.append(TextDelta(self._block("text", out), content))
        calls = delta.get("tool_calls")
        if calls and isinstance(calls, list):
            for position, call in enumerate(calls):
                if isinstance(call, dict):
                    self._tool_call(call, position, out)
        finish = choice.get("finish_reason")
        if isinstance(finish, str):
            self._stop = STOP_FROM_OPENAI.get(finish, "stop")
            out.extend(self._close())

    def _tool_call(self, call: dict[str, Any], position: int, out: list[StreamEvent]) -> None:
        key = call["index"] if isinstance(call.get("index"), int) else position
        fn = obj_at(call, "function")
        if key not in self._tools:
            out.extend(self._close())
            index = self._tools[key] = self._open = self._new_block()
            self._open_kind = "tool_call"
            self.lane = None
            call_id = (
                call["id"] if isinstance(call.get("id"), str) else "call_" + uuid.uuid4().hex[:24]
            )
            out.append(BlockStart(index, "tool_call", call_id, str(fn.get("name") or "")))
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            out.append(ArgumentsDelta(self._tools[key], args))

    def _block(self, kind: Literal["text", "thinking"], out: list[StreamEvent]) -> int:
        """The open block of `kind`, opening one (and closing another) when needed."""
        if self._open is None or self._open_kind != kind:
            out.extend(self._close())
            self._open, self._open_kind = self._new_block(), kind
            self._relane()
            out.append(BlockStart(self._open, kind))
        return self._open

    def _new_block(self) -> int:
        self._next += 1
        return self._next - 1

    def _close(self) -> list[StreamEvent]:
        if self._open is None:
            return []
        index, self._open, self._open_kind = self._open, None, None
        self.lane = None
        return [BlockStop(index)]


def _more_text(obj: dict[str, Any]) -> str | None:
    """The content of a chunk that holds nothing else (one choice, no finish, no usage); else None."""
    choices = obj.get("choices")
    if type(choices) is not list or len(choices) != 1 or "error" in obj:
        return None
    choice = choices[0]
    delta = choice.get("delta") if type(choice) is dict else None
    if type(delta) is not dict or len(delta) != 1 or choice.get("finish_reason") is not None:
        return None
    text = delta.get("content")
    if type(text) is not str or type(obj.get("usage")) is dict:
        return None
    return text


def _learn(block: bytes, text: str) -> tuple[bytes, bytes, int, int] | bool:
    """The bytes before and after the content string of a chunk `_more_text` took; True when
    this chunk does not show them (a later one may), False when the probe refused them.

    A Chat chunk repeats its id, model and created, and every content chunk of a stream differs
    only in its string: a later chunk with this head and tail around a JSON string is the same
    chunk with other text, so only that string needs parsing. The string is the one after the
    chunk's only `"content"`, written as orjson writes `text`. When a key may be written with an
    escape, a probe (the same bytes around another string) must read as a content chunk with
    that string, so a field spelled alike elsewhere in the chunk is never taken for it.
    """
    at = block.find(b'"content"')
    if at < 0 or block.count(b'"content"') != 1 or not block.endswith(b"}"):
        return True
    at += 11 if block[at + 9 : at + 11] == b": " else 10  # compact, or json.dumps' default layout
    quoted = orjson.dumps(text)
    end = at + len(quoted)
    if block[at:end] != quoted:
        return True  # written otherwise (escapes, spaces): the next content chunk may do
    head, tail = block[:at], block[end:]
    if head.find(b"\\") >= 0 or tail.find(b"\\") >= 0:
        # An escape outside the string: a key may be spelled with one (`"con\\u0074ent"`), so
        # the `"content"` found may not be the delta's. Without one every key is written as
        # itself, and the only `"content"` key, followed by the delta's own text, is the delta's.
        try:
            probe = orjson.loads(head[6:] + b'"\\u0000probe"' + tail)
        except orjson.JSONDecodeError:
            return False
        if type(probe) is not dict or _more_text(probe) != "\x00probe":
            return False
    return head, tail, at, -len(tail)


def _error(raw: Any) -> StreamError:
    err = raw if isinstance(raw, dict) else {"message": str(raw)}
    message = str(err.get("message") or "upstream reported an error mid-stream")
    return StreamError(message, _STATUS_BY_TYPE.get(str(err.get("type") or err.get("code")), 500))


class OpenAIEncoder:
    """Neutral events -> chat.completion.chunk events ending in `data: [DONE]`; reasoning is dropped."""

    # The state every stream starts in (on the class: each set in __init__ costs).
    _id: str | None = None
    _started = False
    _finished = False
    dropped: tuple[str, ...] = ()  # what of the upstream's answer the client cannot see
    # A text chunk is most of a stream: its bytes are put together around the one JSON string in
    # it (the same bytes orjson writes for the whole object), once the id is known.
    _head = b""  # `data: {"id":...,"model":...,` once the id is known
    _text_head = b""

    def __init__(
        self,
        model: str,
        usage: Usage,
        include_usage: bool,
        clock: Callable[[], float],
        request: dict[str, Any] | None = None,
    ) -> None:
        self._model = model
        self._usage = usage  # the translator's running total, shared
        self._include_usage = include_usage
        self._created = int(clock())
        self._tools: dict[int, int] = {}  # block index -> OpenAI tool_calls[].index
        self._no_args: set[int] = set()  # tool blocks that have not streamed any arguments yet
        self._end = _END[include_usage]
        self._text_tail = _TEXT_TAIL[include_usage]

    def text(self, index: int, text: str, quoted: bytes | None) -> bytes | None:
        """A content chunk from its text (and its JSON string, when known); None before the start."""
        if not self._started:
            return None
        return b"".join((self._text_head, quoted or orjson.dumps(text), self._text_tail))

    def texts(self, index: int, quoted: list[bytes], texts: list[str]) -> bytes | None:
        """A run of content chunks from their JSON strings; None before the start."""
        if not self._started:
            return None
        head, tail = self._text_head, self._text_tail
        if len(quoted) == 1:
            return b"".join((head, quoted[0], tail))
        return b"".join((head, (tail + head).join(quoted), tail))

    def encode(self, ev: StreamEvent) -> bytes:
        """Client bytes for one neutral event."""
        if type(ev) is TextDelta and self._started:
            return b"".join((self._text_head, orjson.dumps(ev.text), self._text_tail))
        if type(ev) is StreamError:
            return error_end("openai", ev.message, type_for_status(ev.status, "openai"))
        head = b""
        if not self._started:
            self._started = True
            self._id = (ev.id if type(ev) is StreamStart else None) or new_completion_id()
            self._head = head = (
                b'data: {"id":%b,"object":"chat.completion.chunk","created":%d,"model":%b,'
                % (orjson.dumps(self._id), self._created, orjson.dumps(self._model))
            )
            self._text_head = head + b'"choices":[{"index":0,"delta":{"content":'
            head = b"".join((head, _ROLE_CHOICES, self._end))
        return head + self._encode(ev)

    def _encode(self, ev: StreamEvent) -> bytes:
        # One lookup by the event's type instead of a chain of isinstance checks.
        return _WRITERS[type(ev)](self, ev)

    def _text_delta(self, ev: TextDelta) -> bytes:
        return b"".join((self._text_head, orjson.dumps(ev.text), self._text_tail))

    def _arguments_delta(self, ev: ArgumentsDelta) -> bytes:
        if ev.index not in self._tools or not ev.fragment:
            return b""
        self._no_args.discard(ev.index)
        return self._arguments(ev.index, ev.fragment)

    def _block_start(self, ev: BlockStart) -> bytes:
        if ev.kind != "tool_call":
            return b""  # text and thinking blocks have no chunk of their own
        k = self._tools[ev.index] = len(self._tools)
        self._no_args.add(ev.index)
        call = _CALL_CHOICES % (k, orjson.dumps(ev.tool_id), orjson.dumps(ev.tool_name))
        return b"".join((self._head, call, self._end))

    def _block_stop(self, ev: BlockStop) -> bytes:
        return self._empty_arguments(ev.index) if self._no_args else b""

    def _stream_end(self, ev: StreamEnd) -> bytes:
        if self._no_args:
            return self._empty_arguments() + self._finish(ev.stop_reason)
        return self._finish(ev.stop_reason)

    def _stream_done(self, ev: StreamDone) -> bytes:
        out = self._empty_arguments() if self._no_args else b""
        if not self._finished:
            out += self._finish("stop")
        if not self._include_usage:
            return out + _DONE_EVENT
        u = self._usage
        prompt = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
        usage = _USAGE_CHOICES % (prompt, u.output_tokens, prompt + u.output_tokens,
                                  u.cache_read_tokens)  # fmt: skip
        return b"".join((out, self._head, usage, _DONE_EVENT))

    def _thinking_delta(self, ev: ThinkingDelta) -> bytes:
        if ev.redacted is not None and not self.dropped:
            self.dropped = ("redacted_thinking",)  # opaque: Chat Completions has no field for it
        return b""  # reasoning has no place in a chat chunk

    def _stream_start(self, ev: StreamStart) -> bytes:
        return b""  # the role chunk went out with the first event

    def _arguments(self, index: int, text: str) -> bytes:
        call = _ARGUMENTS_CHOICES % (self._tools[index], orjson.dumps(text))
        return b"".join((self._head, call, self._end))

    def _empty_arguments(self, index: int | None = None) -> bytes:
        """A tool call that streamed no input still needs valid JSON arguments: "{}"."""
        if not self._no_args:
            return b""
        if index is None:
            pending = sorted(self._no_args)
        else:
            pending = [index] if index in self._no_args else []
        self._no_args.difference_update(pending)
        return b"".join(self._arguments(i, "{}") for i in pending)

    def _finish(self, stop: StopReason | None) -> bytes:
        if self._finished:
            return b""
        self._finished = True
        return b"".join((self._head, _FINISHES[stop], self._end))


# The encoder's writer for each neutral event type but StreamError.
_WRITERS: dict[type, Callable[[OpenAIEncoder, Any], bytes]] = {
    TextDelta: OpenAIEncoder._text_delta,
    ArgumentsDelta: OpenAIEncoder._arguments_delta,
    ThinkingDelta: OpenAIEncoder._thinking_delta,
    BlockStart: OpenAIEncoder._block_start,
    BlockStop: OpenAIEncoder._block_stop,
    StreamStart: OpenAIEncoder._stream_start,
    StreamEnd: OpenAIEncoder._stream_end,
    StreamDone: OpenAIEncoder._stream_done,
}
