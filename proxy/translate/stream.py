"""Cross-dialect stream translation: SSE parser -> source decoder -> target encoder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import orjson

from driftgate.proxy.errors import Dialect, GatewayError
from driftgate.proxy.sse import SSEEvent, Usage, error_end, event_of, last_block, split_blocks
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
    StreamDecoder,
    StreamEncoder,
)

_loads = orjson.loads
_dumps = orjson.dumps


def _no_text(encoder: object, index: int, text: str, quoted: bytes | None) -> bytes | None:
    return None  # never called: without a decoder's text_of there is no fast lane


class _Hooks(NamedTuple):
    """The lanes a pair of decoder and encoder classes offer (see stream_events), as the classes'
    functions: looked up once per pair, not per stream (a missing attribute's `getattr` raises
    and catches an AttributeError), and called with the decoder or encoder first."""

    quick_of: Callable[[Any, bytes], list[StreamEvent] | None] | None
    text_of: Callable[[Any, bytes], tuple[int, str, bytes | None] | None] | None
    text: Callable[[Any, int, str, bytes | None], bytes | None]
    texts: Callable[[Any, int, list[bytes], list[str]], bytes | None] | None


_HOOKS: dict[tuple[type, type], _Hooks] = {}


def _hooks_of(kinds: tuple[type, type]) -> _Hooks:
    """The lanes of a (decoder class, encoder class) pair, kept for the pair's next streams."""
    decoder, encoder = kinds
    text_of = getattr(decoder, "text_of", None)
    text = getattr(encoder, "text", None)
    both = text_of is not None and text is not None
    hooks = _Hooks(
        getattr(decoder, "quick_of", None),
        text_of if both else None,
        text if text is not None and both else _no_text,
        # Runs of text deltas in the decoder's lane, written by the encoder in one call.
        getattr(encoder, "texts", None),
    )
    _HOOKS[kinds] = hooks
    return hooks


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
        self._decoder = decoder
        self.encoder = encoder
        self.usage = usage
        # Set here, not on the class: an attribute read through the class is not specialised.
        self._done = False
        self._buf = b""  # the unfinished tail of the upstream's bytes (see split_blocks)
        # Which lanes the pair offers, found once per pair of classes (see _Hooks).
        kinds = (type(decoder), type(encoder))
        hooks = _HOOKS.get(kinds)
        self._hooks = hooks if hooks is not None else _hooks_of(kinds)

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
        blocks, self._buf = split_blocks(self._buf + chunk if self._buf else chunk)
        return self._blocks(blocks)

    def _blocks(self, blocks: list[bytes], runs: bool = True) -> bytes:
        """Client bytes for whole SSE blocks: runs of text deltas in the decoder's lane, each
        other block by the fast lane or the general path (`runs` False: no runs).

        Each block is done before the next is looked at: whether a block may take a lane depends
        on what the blocks before it opened, skipped or closed. A run holds only text deltas of
        one block, which change nothing a decoder or encoder decides by, so it is written whole
        when the next block is not one of them (or the read ends).
        """
        if not blocks:
            return b""
        out: list[bytes] = []
        decoder = self._decoder
        encoder = self.encoder
        quick_of, text_of, text, run = self._hooks
        if not runs:
            run = None
        lane = decoder.lane if run is not None else None
        if lane is not None:
            head, head_len, tail, tail_len, index = lane
        quoted_run: list[bytes] = []
        text_run: list[str] = []
        run_start = 0  # where the run began in `blocks`
        for at, block in enumerate(blocks):
            if lane is not None and block[:head_len] == head and block[tail_len:] == tail:
                quoted = block[head_len:tail_len]
                try:
                    value = _loads(quoted)
                except orjson.JSONDecodeError:
                    value = None
                if type(value) is str and value:
                    if not text_run:
                        run_start = at
                    # As long as its text and two quotes: no escape, no multi-byte character,
                    # so it is what orjson writes for the text.
                    quoted_run.append(quoted if len(quoted) == len(value) + 2 else _dumps(value))
                    text_run.append(value)
                    continue
            if text_run:  # the run ends here: written at once, or block by block
                written = run(encoder, index, quoted_run, text_run)  # type: ignore[misc]
                out.append(written or self._blocks(blocks[run_start:at], runs=False))
                if self._done:
                    break
                quoted_run, text_run = [], []
            hit = text_of(decoder, block) if text_of is not None else None
            if hit is not None and (written := text(encoder, *hit)) is not None:
                out.append(written)
            else:
                try:
                    quick = quick_of(decoder, block) if quick_of is not None else None
                except MalformedStream as exc:
                    out.append(self.fail(exc.message))
                    break
                if quick is not None:
                    if quick:
                        out.append(self._neutral(quick))
                        if self._done:
                            break
                else:
                    event = event_of(block)
                    if event is not None:
                        out.append(self._event(event))
                        if self._done:
                            break
            if run is not None:
                lane = decoder.lane
                if lane is not None:
                    head, head_len, tail, tail_len, index = lane
        else:
            if text_run:
                written = run(encoder, index, quoted_run, text_run)  # type: ignore[misc]
                out.append(written or self._blocks(blocks[run_start:], runs=False))
        return b"".join(out)

    def _event(self, sse: SSEEvent) -> bytes:
        """Client bytes for one upstream event, by the general path (decoder, neutral events, encoder)."""
        try:
            decoded = self._decoder.decode(sse)
        except MalformedStream as exc:
            return self.fail(exc.message)
        return self._neutral(decoded) if decoded else b""

    def _neutral(self, decoded: list[StreamEvent]) -> bytes:
        """Client bytes for the neutral events of one upstream event."""
        encode = self.encoder.encode
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
        rest, self._buf = self._buf, b""
        out = self._blocks(last_block(rest))
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
