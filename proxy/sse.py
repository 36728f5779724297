"""Server-sent events: an incremental parser, an encoder, usage counts and the error end.

The same-dialect stream tap lives in proxy/respond/tap.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from driftgate.proxy.errors import (
    Dialect,
    GatewayError,
    anthropic_error_body,
    error_body,
    openai_error_body,
)

DONE = "[DONE]"
_DONE_BYTES = b"data: [DONE]\n\n"


class SSEEvent(NamedTuple):
    """One dispatched event: its `event:` name (None when absent) and its joined `data:` lines.

    A NamedTuple: a stream builds one per event, and a frozen dataclass costs twice as much to make.
    """

    event: str | None
    data: str


_new = tuple.__new__


class SSEParser:
    """Incremental SSE parser: any chunking, \\n / \\r\\n / \\r line ends, comments, multi-line data.

    Input is cut into whole events at blank lines; an event of the usual shape (`data:` alone, or
    `event:` then `data:`) is read without splitting it into lines. The unfinished tail waits in
    the buffer until its blank line arrives.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Events completed by `chunk` (bytes may split lines or UTF-8 sequences anywhere)."""
        out: list[SSEEvent] = []
        for block in self.blocks(chunk):
            event = event_of(block)
            if event is not None:
                out.append(event)
        return out

    def blocks(self, chunk: bytes) -> list[bytes]:
        """The raw events completed by `chunk`, line ends made \\n, without their blank line.

        A stream translator reads the usual events straight from these bytes; `event_of` turns
        any block into its SSEEvent.
        """
        blocks, self._buf = split_blocks(self._buf + chunk if self._buf else chunk)
        return blocks

    def flush(self) -> list[SSEEvent]:
        """At EOF: the event still pending when the stream lacked its final blank line."""
        out: list[SSEEvent] = []
        for block in self.flush_blocks():
            _block(block, out)
        return out

    def flush_blocks(self) -> list[bytes]:
        """At EOF: the raw event still pending when the stream lacked its final blank line."""
        rest, self._buf = self._buf, b""
        return last_block(rest)


def split_blocks(buf: bytes) -> tuple[list[bytes], bytes]:
    """The whole raw events in `buf` (line ends made \\n, without their blank line) and the
    unfinished tail that waits for more bytes (an SSEParser's state, for holders of their own)."""
    if buf.find(b"\r") >= 0:  # `in` first tries the operand as an int, and fails
        held = b""
        if buf.endswith(b"\r"):  # may be the first half of a \r\n split across chunks
            buf, held = buf[:-1], b"\r"
        buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    else:
        held = b""
    blocks = buf.split(b"\n\n")
    return blocks, blocks.pop() + held


def last_block(rest: bytes) -> list[bytes]:
    """At EOF: the raw event in the unfinished tail `rest`, when the stream lacked its final
    blank line."""
    rest = rest.rstrip(b"\r\n")
    return [rest.replace(b"\r\n", b"\n").replace(b"\r", b"\n")] if rest else []


def event_of(block: bytes) -> SSEEvent | None:
    """The event of one raw block (from `SSEParser.blocks`), or None when it holds none."""
    # tuple.__new__ builds the NamedTuple without its Python-level __new__.
    if block.startswith(b"data: ") and b"\n" not in block:
        return _new(SSEEvent, (None, block[6:].decode("utf-8", "replace")))
    if block.startswith(b"event: ") and block.count(b"\n") == 1:
        name, _, data = block.partition(b"\n")
        if data.startswith(b"data: "):
            return _new(SSEEvent, (name[7:].decode("utf-8", "replace") or None,
                                   data[6:].decode("utf-8", "replace")))  # fmt: skip
    if not block:
        return None
    out: list[SSEEvent] = []
    _block(block, out)  # a block holds at most one event: it has no blank line inside
    return out[-1] if out else None


def _block(block: bytes, out: list[SSEEvent]) -> None:
    """One event of any shape: comments, fields without a space, several data lines."""
    event: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line:
            if data:  # a blank line inside the block: the stream had \n\n\n... collapsed oddly
                out.append(SSEEvent(event, b"\n".join(data).decode("utf-8", errors="replace")))
            event, data = None, []
            continue
        if line[0] == 0x3A:  # ":" starts a comment (keep-alive)
            continue
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode("utf-8", errors="replace") or None
    if data:
        out.append(SSEEvent(event, b"\n".join(data).decode("utf-8", errors="replace")))


def encode_event(data: str | bytes, event: str | None = None) -> bytes:
    """One SSE event: optional `event:` line, one `data:` line per line of `data`, blank line."""
    raw = data.encode() if isinstance(data, str) else data
    head = b"event: " + event.encode() + b"\n" if event else b""
    if b"\n" not in raw:
        return head + b"data: " + raw + b"\n\n"
    return head + b"".join(b"data: " + part + b"\n" for part in raw.split(b"\n")) + b"\n"


@dataclass(slots=True)
class Usage:
    """Token counts. `input_tokens` excludes cached tokens (Anthropic's convention)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0  # part of output_tokens, where the upstream says how many

    def merge(self, other: Usage) -> None:
        """Take every non-zero count from `other` (streamed counts are cumulative, not increments)."""
        if other.input_tokens:
            self.input_tokens = other.input_tokens
        if other.output_tokens:
            self.output_tokens = other.output_tokens
        if other.cache_read_tokens:
            self.cache_read_tokens = other.cache_read_tokens
        if other.cache_write_tokens:
            self.cache_write_tokens = other.cache_write_tokens
        if other.reasoning_tokens:
            self.reasoning_tokens = other.reasoning_tokens


def _int(value: Any) -> int:
    return value if type(value) is int else 0  # a JSON number; bool is not int here


def anthropic_usage(raw: Any) -> Usage:
    """Usage from an Anthropic `usage` object."""
    if not isinstance(raw, dict):
        return Usage()
    # Read on every stream's start and end: the counts are checked inline (a JSON number; bool
    # is not int here), without a function call each.
    get = raw.get
    i, o = get("input_tokens"), get("output_tokens")
    r, w = get("cache_read_input_tokens"), get("cache_creation_input_tokens")
    return Usage(
        i if type(i) is int else 0,
        o if type(o) is int else 0,
        r if type(r) is int else 0,
        w if type(w) is int else 0,
    )


def openai_usage(raw: Any) -> Usage:
    """Usage from an OpenAI `usage` object; prompt_tokens includes the cached ones, so subtract them."""
    if not isinstance(raw, dict):
        return Usage()
    # Read once per stream, as anthropic_usage: the counts checked inline, Usage built positionally.
    get = raw.get
    details = get("prompt_tokens_details")
    cached = details.get("cached_tokens") if type(details) is dict else 0
    cached = cached if type(cached) is int else 0
    prompt, completion = get("prompt_tokens"), get("completion_tokens")
    prompt = prompt - cached if type(prompt) is int and prompt > cached else 0
    out_details = get("completion_tokens_details")
    reasoning = out_details.get("reasoning_tokens") if type(out_details) is dict else 0
    return Usage(
        prompt,
        completion if type(completion) is int else 0,
        cached,
        0,
        reasoning if type(reasoning) is int else 0,
    )


def responses_usage(raw: Any) -> Usage:
    """Usage from a Responses API `usage` object; input_tokens includes the cached ones."""
    if not isinstance(raw, dict):
        return Usage()
    details = raw.get("input_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    out_details = raw.get("output_tokens_details")
    return Usage(
        input_tokens=max(_int(raw.get("input_tokens")) - cached, 0),
        output_tokens=_int(raw.get("output_tokens")),
        cache_read_tokens=cached,
        reasoning_tokens=_int(out_details.get("reasoning_tokens"))
        if isinstance(out_details, dict)
        else 0,
    )


def error_end(
    dialect: Dialect, message: str | GatewayError, error_type: str | None = None
) -> bytes:
    """A well-formed error event in `dialect`, followed by the stream's end where the dialect has one.

    A GatewayError brings its own types (the gateway shutting down is `overloaded_error`)."""
    if isinstance(message, GatewayError):
        if dialect == "responses":
            return responses_failed(message.message, message.openai_type)
        body = error_body(message, dialect)
        if dialect == "anthropic":
            return encode_event(orjson.dumps(body), "error")
        return encode_event(orjson.dumps(body)) + _DONE_BYTES
    if dialect == "anthropic":
        body = anthropic_error_body(message, error_type or "api_error")
        return encode_event(orjson.dumps(body), "error")
    if dialect == "responses":
        return responses_failed(message, error_type or "server_error")
    return (
        encode_event(orjson.dumps(openai_error_body(message, error_type or "server_error")))
        + _DONE_BYTES
    )


def responses_failed(
    message: str, code: str, sequence_number: int = 0, response: dict[str, Any] | None = None
) -> bytes:
    """A Responses stream's end after a failure: `response.failed` with the error in the response."""
    failed: dict[str, Any] = dict(response) if response else {"object": "response", "output": []}
    failed["status"] = "failed"
    failed["error"] = {"code": code, "message": message}
    body = {"type": "response.failed", "sequence_number": sequence_number, "response": failed}
    return encode_event(orjson.dumps(body), "response.failed")
