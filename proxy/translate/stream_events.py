"""The seams a stream translator is built from: one decoder per source, one encoder per target."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from driftgate.proxy.errors import GatewayError
from driftgate.proxy.sse import SSEEvent
from driftgate.proxy.translate.ir import StreamEvent


class MalformedStream(GatewayError):
    """An upstream SSE event could not be understood (not JSON, or not the dialect's shape)."""

    status = 502


class StreamDecoder(Protocol):
    """Turns one upstream SSE event into neutral stream events."""

    lane: TextLane | None
    """Where the next text deltas sit in their raw blocks, while the decoder knows (see TextLane)."""

    def decode(self, event: SSEEvent) -> list[StreamEvent]:
        """The neutral events `event` means; raises MalformedStream."""
        ...


class StreamEncoder(Protocol):
    """Turns neutral stream events into the client's SSE bytes, keeping its stream well-formed."""

    def encode(self, event: StreamEvent) -> bytes:
        """The client bytes for `event` (possibly empty)."""
        ...


# The text-delta fast lane: most of a stream is text deltas. A decoder that can read one straight
# from its raw SSE block offers `text_of`, an encoder that can write one from the text (and, when
# the decoder has it, the text's JSON string as orjson would write it) offers `text`. Either
# answers None when the event or its own state needs the general path.
TextOf = Callable[[bytes], "tuple[int, str, bytes | None] | None"]
"""Raw SSE block -> (block index, text, the text's canonical JSON string or None), or None."""
QuickOf = Callable[[bytes], "list[StreamEvent] | None"]
"""Raw SSE block -> its neutral events, for the layouts a decoder reads from bytes; else None.

It may raise MalformedStream like `decode`; None sends the block down the general path."""
TextEncode = Callable[[int, str, "bytes | None"], "bytes | None"]
"""(block index, text, canonical JSON string or None) -> client bytes, or None."""
TextLane = tuple[bytes, int, bytes, int, int]
"""(head, len(head), tail, -len(tail), block index): a raw block that starts with head and ends
with tail, with a JSON string between holding a non-empty text, is one text delta of block index
and nothing else. Most of a stream is such blocks: the translator reads them itself, in runs."""
TextRun = Callable[[int, "list[bytes]", "list[str]"], "bytes | None"]
"""(block index, the deltas' JSON strings as orjson writes them, their texts) -> client bytes for
the whole run of text deltas, or None when the encoder's state needs the general path."""
