"""The seams a stream translator is built from: one decoder per source, one encoder per target."""

from __future__ import annotations

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


# The text-delta fast lane: most of a stream is text deltas. A decoder or encoder may offer these
# methods (stream.py finds them once per pair of classes); each answers None when the event or its
# own state needs the general path:
# - decoder `text_of(block)`: raw SSE block -> (block index, text, the text's JSON string as
#   orjson writes it, or None), or None; offered to the translator only with an encoder's `text`;
# - decoder `quick_of(block)`: raw SSE block -> its neutral events, for the layouts the decoder
#   reads from bytes; it may raise MalformedStream like `decode`;
# - encoder `text(index, text, quoted)`: client bytes for one text delta;
# - encoder `texts(index, quoted_list, text_list)`: client bytes for a whole run of text deltas
#   in the decoder's lane (TextLane).
TextLane = tuple[bytes, int, bytes, int, int]
"""(head, len(head), tail, -len(tail), block index): a raw block that starts with head and ends
with tail, with a JSON string between holding a non-empty text, is one text delta of block index
and nothing else. Most of a stream is such blocks: the translator reads them itself, in runs."""
