"""Cross-dialect stream translation: SSE parser -> source decoder -> target encoder."""

from __future__ import annotations

from typing import Protocol

from driftgate.proxy.errors import Dialect, GatewayError
from driftgate.proxy.sse import SSEEvent, SSEParser, Usage, error_end
from driftgate.proxy.translate.ir import (
    StreamDone,
    StreamEnd,
    StreamError,
    StreamStart,
    TextDelta,
)
from driftgate.proxy.translate.stream_events import MalformedStream, StreamDecoder, StreamEncoder


class StreamTranslator(Protocol):
    """What the gateway drives: upstream bytes in, client bytes out."""

    usage: Usage

    def feed(self, chunk: bytes) -> bytes:
        """Client bytes for a raw upstream chunk (any chunking)."""
        ...

    def finish(self) -> bytes:
        """Upstream EOF: closing events, or an error event when the stream was cut short."""
        ...

    def fail(self, message: str | GatewayError) -> bytes:
        """Upstream died mid-stream: an error event in the client's dialect, then the end."""
        ...

    @property
    def done(self) -> bool:
        """A terminal event has been emitted."""
        ...


class Translator:
    """The one StreamTranslator: dialect knowledge lives in the decoder and encoder it is given."""

    def __init__(
        self, target: Dialect, decoder: StreamDecoder, encoder: StreamEncoder, usage: Usage
    ) -> None:
        self._target: Dialect = target
        self._parser = SSEParser()
        self._decoder = decoder
        self.encoder = encoder
        self.usage = usage
        self._done = False

    @property
    def done(self) -> bool:
        """A terminal event has been emitted."""
        return self._done

    def feed(self, chunk: bytes) -> bytes:
        """Client bytes for a raw upstream chunk (any chunking)."""
        if self._done:
            return b""
        return self._events(self._parser.feed(chunk))

    def _events(self, events: list[SSEEvent]) -> bytes:
        out: list[bytes] = []
        decode = self._decoder.decode
        encode = self.encoder.encode
        for sse in events:
            try:
                decoded = decode(sse)
            except MalformedStream as exc:
                out.append(self.fail(exc.message))
                break
            for ev in decoded:
                kind = type(ev)
                if kind is TextDelta:  # most events: nothing to note, nothing ends
                    out.append(encode(ev))
                    continue
                if isinstance(ev, StreamStart | StreamEnd):
                    self.usage.merge(ev.usage)
                out.append(encode(ev))
                if kind is StreamDone or kind is StreamError:
                    self._done = True
                    break
            if self._done:
                break
        return b"".join(out)

    def finish(self) -> bytes:
        """Upstream EOF: closing events, or an error event when the stream was cut short."""
        if self._done:
            return b""
        out = self._events(self._parser.flush())
        if self._done:
            return out
        return out + self.fail("upstream stream ended before its final event")

    def fail(self, message: str | GatewayError) -> bytes:
        """Upstream died mid-stream: an error event in the client's dialect, then the end."""
        if self._done:
            return b""
        self._done = True
        if isinstance(message, GatewayError):
            if self._target != "responses":
                return error_end(self._target, message)
            return self.encoder.encode(StreamError(message.message, message.status))
        return self.encoder.encode(StreamError(message))
