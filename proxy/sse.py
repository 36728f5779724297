"""Server-sent events: an incremental parser, an encoder, and the same-dialect stream tap."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from proxy.errors import Dialect, anthropic_error_body, openai_error_body

DONE = "[DONE]"
_DONE_BYTES = b"data: [DONE]\n\n"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its `event:` name (None when absent) and its joined `data:` lines."""

    event: str | None
    data: str


class SSEParser:
    """Incremental SSE parser: any chunking, \\n / \\r\\n / \\r line ends, comments, multi-line data."""

    __slots__ = ("_buf", "_data", "_event")

    def __init__(self) -> None:
        self._buf = b""
        self._event: str | None = None
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Events completed by `chunk` (bytes may split lines or UTF-8 sequences anywhere)."""
        buf = self._buf + chunk
        if b"\r" in buf:
            held = b""
            if buf.endswith(b"\r"):  # may be the first half of a \r\n split across chunks
                buf, held = buf[:-1], b"\r"
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        else:
            held = b""
        lines = buf.split(b"\n")
        self._buf = lines.pop() + held
        out: list[SSEEvent] = []
        for line in lines:
            self._line(line, out)
        return out

    def flush(self) -> list[SSEEvent]:
        """At EOF: the event still pending when the stream lacked its final blank line."""
        out: list[SSEEvent] = []
        if self._buf:
            rest, self._buf = self._buf.rstrip(b"\r"), b""
            self._line(rest, out)
        self._line(b"", out)
        return out

    def _line(self, line: bytes, out: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                data = b"\n".join(self._data).decode("utf-8", errors="replace")
                out.append(SSEEvent(self._event, data))
            self._event, self._data = None, []
            return
        if line[0] == 0x3A:  # ":" starts a comment (keep-alive)
            return
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", errors="replace") or None


def encode_event(data: str | bytes, event: str | None = None) -> bytes:
    """One SSE event: optional `event:` line, one `data:` line per line of `data`, blank line."""
    raw = data.encode() if isinstance(data, str) else data
    head = b"event: " + event.encode() + b"\n" if event else b""
    if b"\n" not in raw:
        return head + b"data: " + raw + b"\n\n"
    return head + b"".join(b"data: " + part + b"\n" for part in raw.split(b"\n")) + b"\n"


@dataclass
class Usage:
    """Token counts. `input_tokens` excludes cached tokens (Anthropic's convention)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def merge(self, other: Usage) -> None:
        """Take every non-zero count from `other` (streamed counts are cumulative, not increments)."""
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
            value = getattr(other, name)
            if value:
                setattr(self, name, value)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def anthropic_usage(raw: Any) -> Usage:
    """Usage from an Anthropic `usage` object."""
    if not isinstance(raw, dict):
        return Usage()
    return Usage(
        input_tokens=_int(raw.get("input_tokens")),
        output_tokens=_int(raw.get("output_tokens")),
        cache_read_tokens=_int(raw.get("cache_read_input_tokens")),
        cache_write_tokens=_int(raw.get("cache_creation_input_tokens")),
    )


def openai_usage(raw: Any) -> Usage:
    """Usage from an OpenAI `usage` object; prompt_tokens includes the cached ones, so subtract them."""
    if not isinstance(raw, dict):
        return Usage()
    details = raw.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    prompt = _int(raw.get("prompt_tokens"))
    return Usage(
        input_tokens=max(prompt - cached, 0),
        output_tokens=_int(raw.get("completion_tokens")),
        cache_read_tokens=cached,
    )


def _worth_parsing(payload: bytes) -> bool:
    """Whether a data payload may carry usage, an error or the end (a bytes scan, no JSON parse)."""
    if b"message_stop" in payload or b'"error"' in payload:
        return True
    at = payload.find(b'"usage"')
    if at < 0:
        return False
    # With include_usage every OpenAI chunk carries "usage": null; only the last has numbers.
    return payload[at + 7 : at + 14].lstrip(b": ")[:4] != b"null"


def error_end(dialect: Dialect, message: str, error_type: str | None = None) -> bytes:
    """A well-formed error event in `dialect`, followed by the stream's end where the dialect has one."""
    if dialect == "anthropic":
        body = anthropic_error_body(message, error_type or "api_error")
        return encode_event(orjson.dumps(body), "error")
    return (
        encode_event(orjson.dumps(openai_error_body(message, error_type or "server_error")))
        + _DONE_BYTES
    )


class StreamTap:
    """Same-dialect relay: forwards whole events unchanged, collecting usage and the terminal event.

    `feed` returns the complete events in hand (None when there are none yet): holding back a
    partial event means an error event appended later can never land inside a half-sent one.
    """

    __slots__ = ("_buf", "_dialect", "_ended", "done", "malformed", "usage")

    def __init__(self, dialect: Dialect) -> None:
        self._dialect: Dialect = dialect
        self._buf = b""
        self._ended = False
        self.usage = Usage()
        self.done = False
        self.malformed: str | None = None

    def feed(self, chunk: bytes) -> bytes | None:
        """`chunk`'s complete events, unchanged; None when nothing can be forwarded yet."""
        if self._ended or self.malformed is not None:
            return None
        data = self._buf + chunk if self._buf else chunk
        lf = data.rfind(b"\n\n")
        crlf = data.rfind(b"\r\n\r\n")
        cut = max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)
        if cut == 0:
            self._buf = data
            return None
        complete, self._buf = (data, b"") if cut == len(data) else (data[:cut], data[cut:])
        bad_at = self._scan(complete)
        if bad_at is not None:
            return complete[:bad_at] or None
        return complete

    def _scan(self, complete: bytes) -> int | None:
        """Inspect data lines; return the offset of the first malformed event, else None."""
        anthropic = self._dialect == "anthropic"
        pos = 0
        n = len(complete)
        event_start = 0
        while pos < n:
            nl = complete.find(b"\n", pos)
            if nl < 0:
                nl = n
            line = complete[pos:nl].rstrip(b"\r")
            if not line:
                event_start = nl + 1
            elif line.startswith(b"data:"):
                payload = line[5:].strip()
                if not self._check(payload, anthropic):
                    self.malformed = f"upstream sent a data line that is not JSON: {payload[:80]!r}"
                    return event_start
            pos = nl + 1
        return None

    def _check(self, payload: bytes, anthropic: bool) -> bool:
        if not anthropic and payload == b"[DONE]":
            self.done = True
            return True
        if not (payload.startswith(b"{") and payload.endswith(b"}")):
            return False
        # Only events that can carry usage or end the stream are worth a JSON parse.
        if not _worth_parsing(payload):
            return True
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(obj, dict):
            return False
        if anthropic:
            kind = obj.get("type")
            if kind == "message_start":
                message = obj.get("message")
                self.usage.merge(
                    anthropic_usage(message.get("usage") if isinstance(message, dict) else None)
                )
            elif kind == "message_delta":
                self.usage.merge(anthropic_usage(obj.get("usage")))
            elif kind in ("message_stop", "error"):
                self.done = True
        else:
            if obj.get("usage"):
                self.usage.merge(openai_usage(obj["usage"]))
            if "error" in obj:
                self.done = True
        return True

    def finish(self) -> bytes:
        """Upstream EOF: nothing when the stream ended; otherwise an error event and the end."""
        if self._ended:
            return b""
        self._ended = True
        rest = b""
        if self._buf and self.malformed is None:
            # The upstream closed without the final blank line: complete the last event.
            rest = self._buf.rstrip(b"\r\n") + b"\n\n"
            self._buf = b""
            if self._scan(rest) is not None:
                rest = b""
        if self.done:
            return rest
        return rest + error_end(self._dialect, "upstream stream ended before its final event")

    def fail(self, message: str) -> bytes:
        """Upstream died mid-stream: an error event in the tap's dialect, then the end."""
        if self._ended or self.done:
            return b""
        self._ended = True
        return error_end(self._dialect, message)


def stream_tap(dialect: Dialect) -> StreamTap:
    """A tap for a stream whose upstream and client speak the same `dialect`."""
    return StreamTap(dialect)
