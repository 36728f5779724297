"""What can go wrong talking to an upstream, one class per kind, shared by every transport."""

from __future__ import annotations


class UpstreamError(Exception):
    """The exchange with the upstream failed (no HTTP answer, or a broken one)."""


class UpstreamConnectError(UpstreamError):
    """No connection: refused, unresolvable, the proxy refused, or the TLS handshake failed."""


class UpstreamTimeout(UpstreamError, TimeoutError):
    """A connect, read or total time bound ran out."""


class UpstreamDisconnected(UpstreamError):
    """The upstream closed the connection before its answer was complete."""


class UpstreamTruncated(UpstreamDisconnected):
    """The body ended before the end its framing (length, chunked or gzip) announced."""


class UpstreamProtocolError(UpstreamError):
    """The upstream's bytes are not an HTTP/1.1 response the gateway can use."""


class UpstreamTooLarge(UpstreamError):
    """The (decompressed) body grew past the backend's max_response_bytes."""
