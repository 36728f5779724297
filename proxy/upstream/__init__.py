"""The one shared upstream client an app uses to reach every upstream, and its time bounds."""

from __future__ import annotations

from driftgate.proxy import __version__
from driftgate.proxy.upstream.client import Timeouts, UpstreamClient

USER_AGENT = f"driftgate/{__version__}"


def make_client() -> UpstreamClient:
    """A pooled keep-alive client; idle connections are closed after 15 s."""
    return UpstreamClient()


def stream_timeout(connect: float, read: float) -> Timeouts:
    """A streaming request: bounded connect, bounded gap between reads, no total."""
    return Timeouts(connect=connect, total=None, read=read)


def whole_timeout(connect: float, total: float) -> Timeouts:
    """A non-streaming request: bounded connect and a bound on the whole exchange."""
    return Timeouts(connect=connect, total=total, read=None)
