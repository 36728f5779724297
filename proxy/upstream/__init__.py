"""The upstream side: the `Transport` seam, its two implementations, and their time bounds."""

from __future__ import annotations

from driftgate.proxy import __version__
from driftgate.proxy.upstream.dialing import Resolve
from driftgate.proxy.upstream.settings import TransportSettings, tls_context
from driftgate.proxy.upstream.transport import Timeouts, Transport

USER_AGENT = f"driftgate/{__version__}"


def make_transport(settings: TransportSettings, resolve: Resolve | None = None) -> Transport:
    """The transport a backend's settings name: the fast client (default) or aiohttp's."""
    # The system's CAs take ~10 ms to load: only custom TLS files are loaded now (and checked);
    # the default context is made when a first https connection needs it.
    custom = settings.ca_bundle is not None or settings.client_cert is not None
    tls = tls_context(settings) if custom else None
    if settings.kind == "aiohttp":
        from driftgate.proxy.upstream.aiohttp_transport import AiohttpTransport

        return AiohttpTransport(settings, tls, resolve)
    from driftgate.proxy.upstream.client import UpstreamClient

    return UpstreamClient(settings, tls, resolve)


def stream_timeout(connect: float, read: float) -> Timeouts:
    """A streaming request: bounded connect, bounded gap between reads, no total."""
    return Timeouts(connect=connect, total=None, read=read)


def whole_timeout(connect: float, total: float) -> Timeouts:
    """A non-streaming request: bounded connect and a bound on the whole exchange."""
    return Timeouts(connect=connect, total=total, read=None)
