"""The one shared aiohttp client session an app uses to reach every upstream."""

from __future__ import annotations

import aiohttp

from proxy import __version__

USER_AGENT = f"driftgate/{__version__}"


def make_session() -> aiohttp.ClientSession:
    """A pooled session: unlimited connections, keep-alive, cached DNS, no cookies."""
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60.0)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        # Timeouts are per request (per backend); the session itself never times out.
        timeout=aiohttp.ClientTimeout(total=None),
    )


def stream_timeout(connect: float, read: float) -> aiohttp.ClientTimeout:
    """A streaming request: bounded connect, bounded gap between reads, no total."""
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, connect=connect, sock_read=read)


def whole_timeout(connect: float, total: float) -> aiohttp.ClientTimeout:
    """A non-streaming request: bounded connect and a bound on the whole exchange."""
    return aiohttp.ClientTimeout(total=total, sock_connect=connect, connect=connect)
