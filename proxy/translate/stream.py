"""Cross-dialect stream translation: SSE parser -> source decoder -> target encoder."""

from __future__ import annotations

from typing import Protocol

from driftgate.proxy.errors import Dialect, GatewayError
from driftgate.proxy.sse import SSEEvent, SSEParser, Usage, error_end, event_of
from driftgate.proxy.translate.ir import (
    StreamDone,
    StreamEnd,
    StreamError,
    StreamEvent,
    StreamStart,
    TextDelta,
)
from driftgate.proxy.translate.stream_events import (
    MalformedStream,
    QuickOf,
    StreamDecoder,
    StreamEncoder,
    TextEncode,
    TextOf,
)


def _no_text(index: int, text: str, quoted: bytes | None) -> bytes | None:
    return None  # never called: without a decoder's text_of there is no fast lane


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
        # The text-delta fast lane, when both sides offer it (see stream_events).
        self._decode = decoder.decode
        self._encode = encoder.encode
        # Events a decoder reads from their raw block without the SSE parse (see stream_events).
        self._quick: QuickOf | None = getattr(decoder, "quick_of", None)
        text_of: TextOf | None = getattr(decoder, "text_of", None)
        text: TextEncode | None = getattr(encoder, "text", None)
        self._fast: tuple[TextOf, TextEncode] | None = (
            (text_of, text) if text_of is not None and text is not None else None
        )

    @property
    def done(self) -> bool:
        """A terminal event has been emitted."""
        return self._done

    @property
    def dropped(self) -> tuple[str, ...]:
        """What of the upstream's answer so far the client's dialect cannot show (for the header)."""
        value = getattr(self.encoder, "dropped", ())
        return value if isinstance(value, tuple) else ()

    def feed(self, chunk: bytes) -> bytes:
        """Client bytes for a raw upstream chunk (any chunking)."""
        if self._done:
            return b""
        return self._blocks(self._parser.blocks(chunk))

    def _blocks(self, blocks: list[bytes]) -> bytes:
        """Client bytes for whole SSE blocks: text deltas by the fast lane, the rest in general.

        Each block is done before the next is looked at: whether a block may take the fast lane
        depends on what the blocks before it opened, skipped or closed.
        """
        out: list[bytes] = []
        text_of, text = self._fast if self._fast is not None else (None, _no_text)
        quick_of = self._quick
        for block in blocks:
            if text_of is not None:
                hit = text_of(block)
                if hit is not None:
                    written = text(*hit)
                    if written is not None:
                        out.append(written)
                        continue
            try:
                quick = quick_of(block) if quick_of is not None else None
            except MalformedStream as exc:
                out.append(self.fail(exc.message))
                break
            if quick is not None:
                if quick:
                    out.append(self._neutral(quick))
                    if self._done:
                        break
                continue
            event = event_of(block)
            if event is not None:
                out.append(self._event(event))
                if self._done:
                    break
        return b"".join(out)

    def _event(self, sse: SSEEvent) -> bytes:
        """Client bytes for one upstream event, by the general path (decoder, neutral events, encoder)."""
        try:
            decoded = self._decode(sse)
        except MalformedStream as exc:
            return self.fail(exc.message)
        return self._neutral(decoded) if decoded else b""

    def _neutral(self, decoded: list[StreamEvent]) -> bytes:
        """Client bytes for the neutral events of one upstream event."""
        encode = self._encode
        out: list[bytes] = []
        for ev in decoded:
            kind = type(ev)
            if kind is TextDelta:  # nothing to note, nothing ends
                out.append(encode(ev))
                continue
            if kind is StreamStart or kind is StreamEnd:
                self.usage.merge(ev.usage)  # type: ignore[union-attr]
            out.append(encode(ev))
            if kind is StreamDone or kind is StreamError:
                self._done = True
                break
        return out[0] if len(out) == 1 else b"".join(out)

    def finish(self) -> bytes:
        """Upstream EOF: closing events, or an error event when the stream was cut short."""
        if self._done:
            return b""
        out = self._blocks(self._parser.flush_blocks())
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
