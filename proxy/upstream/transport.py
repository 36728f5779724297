"""The seam between the gateway and its upstreams: what `forward` and `relay` rely on.

Two implementations: the fast HTTP/1.1 client (`client.py`, the default) and one over
aiohttp's ClientSession (`aiohttp_transport.py`). tests/proxy/upstream/test_conformance.py
runs the same suite against both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Protocol
from urllib.parse import quote

from multidict import CIMultiDictProxy

# Methods whose request goes without a body or Content-Length when it has none to send.
BODILESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_URL_SAFE = "/%:@!$&'()*+,;=~?"  # already-escaped text and URL syntax stay as they are


def request_target(path: str, query: str) -> str:
    """The request-target both transports send: escaped once, a client's escapes kept as given."""
    target = quote(path or "/", safe=_URL_SAFE)
    return f"{target}?{quote(query, safe=_URL_SAFE)}" if query else target


class Timeouts(NamedTuple):
    """Seconds: `connect` a new connection; `total` the whole exchange; `read` each wait for bytes."""

    connect: float
    total: float | None
    read: float | None


class Response(Protocol):
    """An upstream answer: status and headers at once, the body as it arrives."""

    status: int
    headers: CIMultiDictProxy[str]

    @property
    def content_type(self) -> str:
        """The media type, lower-cased, without parameters; "" when absent."""

    def at_eof(self) -> bool:
        """The body is complete and all of it was read."""

    async def readany(self) -> bytes:
        """The body bytes available now (waiting for some if none are); b"" at the end."""

    async def read(self) -> bytes:
        """The rest of the body."""

    def read_now(self) -> bytes | None:
        """The rest of the body when all of it is in hand (no wait), else None: then `read`."""

    def release(self) -> None:
        """Give the connection back for reuse when the answer was read whole, else close it."""

    def close(self) -> None:
        """Drop the connection now: the upstream sees the request abandoned."""


class Transport(Protocol):
    """Sends one request at a time per connection, pooling connections per upstream host."""

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeouts: Timeouts
    ) -> Response:
        """Send a POST; return once the response's status and headers arrived.

        Raises an `UpstreamError` subclass (errors.py) for every failure, never another type.
        """

    async def request(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str], timeouts: Timeouts
    ) -> Response:
        """`post` for any method: the endpoints the gateway forwards as they are (proxy/other.py)."""

    async def close(self) -> None:
        """Close every pooled connection."""
