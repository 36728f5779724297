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

    def decode(self, event: SSEEvent) -> list[StreamEvent]:
        """The neutral events `event` means; raises MalformedStream."""
        ...


class StreamEncoder(Protocol):
    """Turns neutral stream events into the client's SSE bytes, keeping its stream well-formed."""

    def encode(self, event: StreamEvent) -> bytes:
        """The client bytes for `event` (possibly empty)."""
        ...
