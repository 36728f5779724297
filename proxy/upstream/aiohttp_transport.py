"""The `Transport` over aiohttp's ClientSession: the reference the fast client is tested against.

Selected per backend with `transport = "aiohttp"`. It sends the same request bytes as the
fast client (no automatic Accept, User-Agent or Content-Type; `Accept-Encoding: identity`)
and maps every aiohttp failure to the same `UpstreamError` classes.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Coroutine, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import aiohttp.abc
import yarl
from multidict import CIMultiDictProxy

from driftgate.proxy.upstream.connection import MAX_HEADERS
from driftgate.proxy.upstream.decoding import decoder_for, too_large
from driftgate.proxy.upstream.dialing import Resolve, proxy_refusal
from driftgate.proxy.upstream.errors import (
    UpstreamConnectError,
    UpstreamDisconnected,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamTruncated,
)
from driftgate.proxy.upstream.failure_words import in_words
from driftgate.proxy.upstream.proxies import Proxy, ProxyChooser
from driftgate.proxy.upstream.settings import DNS_TTL, TransportSettings, tls_context
from driftgate.proxy.upstream.transport import BODILESS_METHODS, Timeouts, request_target

MAX_FIELD = 1 << 16
_SKIP = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


def upstream_error(exc: BaseException) -> UpstreamError:
    """The transport-neutral error for an aiohttp (or socket) failure."""
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(
            f"the upstream did not answer within a time bound ({exc or 'timeout'})"
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamConnectError(f"cannot connect to {exc.host}:{exc.port}: {in_words(exc)}")
    if isinstance(exc, aiohttp.ClientSSLError):
        return UpstreamConnectError(f"cannot connect: {in_words(exc)}")
    if isinstance(exc, aiohttp.ClientHttpProxyError | aiohttp.InvalidUrlClientError):
        return UpstreamConnectError(f"cannot connect: {exc}")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return UpstreamTruncated(f"the upstream's body ended early: {exc}")
    if isinstance(exc, aiohttp.ClientResponseError):
        return UpstreamProtocolError(f"malformed HTTP response: {exc.message}")
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | OSError):
        return UpstreamDisconnected(f"the upstream closed the connection: {exc}")
    return UpstreamError(f"the upstream exchange failed: {exc}")


class AiohttpResponse:
    """An aiohttp ClientResponse behind the `Response` protocol (decoding done here, bounded)."""

    __slots__ = ("_decoder", "_ended", "_limit", "_received", "_resp", "headers", "status")

    def __init__(self, resp: aiohttp.ClientResponse, limit: int) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers: CIMultiDictProxy[str] = resp.headers
        self._limit = limit
        self._received = 0
        self._ended = False
        self._decoder = decoder_for(resp.headers.get("Content-Encoding"), limit)

    @property
    def content_type(self) -> str:
        """The media type, lower-cased, without parameters; "" when absent."""
        value = self.headers.get("Content-Type")
        return value.partition(";")[0].strip().lower() if value else ""

    def at_eof(self) -> bool:
        """The body is complete and all of it was read."""
        if self._decoder is None:
            return self._resp.content.at_eof()
        return self._ended

    async def readany(self) -> bytes:
        """The body bytes available now (waiting for some if none are); b"" at the end."""
        try:
            return await self._next()
        except asyncio.CancelledError:
            self._resp.close()
            raise
        except UpstreamError:
            self._resp.close()
            raise
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._resp.close()
            raise upstream_error(exc) from exc

    async def read(self) -> bytes:
        """The rest of the body."""
        parts: list[bytes] = []
        while data := await self.readany():
            parts.append(data)
        return b"".join(parts)

    def read_now(self) -> bytes | None:
        """None: aiohttp's body is read by awaiting it (`read`)."""
        return None

    async def _next(self) -> bytes:
        decoder = self._decoder
        if decoder is None:
            data = await self._resp.content.readany()
            self._received += len(data)
            if self._received > self._limit:
                raise too_large(self._limit)
            return data
        while not self._ended:
            if decoder.pending:
                out = decoder.pull()
                if out:
                    return out
                continue
            raw = await self._resp.content.readany()
            if raw:
                decoder.push(raw)
                continue
            self._ended = True
            return decoder.end()
        return b""

    def release(self) -> None:
        """Back to the pool when the body was read whole, else closed."""
        if self.at_eof():
            self._resp.release()
        else:
            self._resp.close()

    def close(self) -> None:
        """Drop the connection now."""
        self._resp.close()


class _ResolverAdapter(aiohttp.abc.AbstractResolver):
    """A plain resolve function (dialing.Resolve) as aiohttp's resolver."""

    def __init__(self, resolve: Resolve) -> None:
        self._resolve = resolve

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        out: list[aiohttp.abc.ResolveResult] = []
        for fam, _, proto, _, addr in await self._resolve(host, port):
            out.append(
                {
                    "hostname": host,
                    "host": addr[0],
                    "port": addr[1],
                    "family": fam,
                    "proto": proto,
                    "flags": socket.AI_NUMERICHOST,
                }
            )
        return out

    async def close(self) -> None:
        return None


class AiohttpTransport:
    """Pooled keep-alive connections through one aiohttp ClientSession."""

    def __init__(
        self,
        settings: TransportSettings | None = None,
        ssl_context: ssl.SSLContext | None = None,
        resolve: Resolve | None = None,
    ) -> None:
        self._resolver = _ResolverAdapter(resolve) if resolve is not None else None
        self._settings = settings or TransportSettings()
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None
        self._proxies = ProxyChooser(self._settings.proxies)  # ConfigError now for a bad URL
        self._targets: dict[str, tuple[yarl.URL, Proxy | None, dict[str, str] | None]] = {}

    def _target(self, url: str) -> tuple[yarl.URL, Proxy | None, dict[str, str] | None]:
        try:
            parts = urlsplit(url)
            origin = f"{parts.scheme}://{parts.netloc}"
            # yarl would re-escape the query (%2F becomes /): send the fast client's target
            parsed = yarl.URL(origin + request_target(parts.path, parts.query), encoded=True)
            host, port, scheme = parsed.host, parsed.port, parsed.scheme
        except (ValueError, TypeError) as exc:
            raise UpstreamConnectError(f"not a usable URL: {url!r} ({exc})") from exc
        if scheme not in ("http", "https") or not host or not port:
            raise UpstreamConnectError(f"not an http(s) URL: {url!r}")
        if parsed.user is not None or parsed.password is not None:
            raise UpstreamConnectError("credentials in a base_url are not sent: use key or key_env")
        proxy = self._proxies.choose(scheme, host, port) if self._proxies.active else None
        auth = None
        if proxy is not None and proxy.authorization is not None:
            auth = {"Proxy-Authorization": proxy.authorization}
        if len(self._targets) >= 1024:
            self._targets.clear()
        target = self._targets[url] = (parsed, proxy, auth)
        return target

    def _open(self) -> aiohttp.ClientSession:
        s = self._settings
        connector = aiohttp.TCPConnector(
            ssl=self._ssl or tls_context(s),
            keepalive_timeout=s.idle_seconds,
            limit=0,  # aiohttp's default total of 100 would queue the 101st stream
            limit_per_host=s.max_connections_per_host,
            happy_eyeballs_delay=s.happy_eyeballs_delay,
            ttl_dns_cache=DNS_TTL,
            resolver=self._resolver,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            skip_auto_headers=_SKIP,
            auto_decompress=False,  # decoding.py decodes, bounded, as for the fast client
            trust_env=False,  # proxies come from the config object, never from os.environ here
            max_headers=MAX_HEADERS,  # the fast client's limits, not aiohttp's tighter defaults
            max_field_size=MAX_FIELD,
            max_line_size=MAX_FIELD,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        self._session = session
        return session

    def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeouts: Timeouts
    ) -> Coroutine[Any, Any, AiohttpResponse]:
        """Send a POST; return once the response's status and headers arrived."""
        return self.request("POST", url, body, headers, timeouts)

    async def request(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str], timeouts: Timeouts
    ) -> AiohttpResponse:
        """Send a request of any method; return once the response's status and headers arrived."""
        session = self._session or self._open()
        parsed, proxy, proxy_auth = self._targets.get(url) or self._target(url)
        bound = aiohttp.ClientTimeout(
            total=timeouts.total, connect=timeouts.connect, sock_read=timeouts.read
        )
        sent = {**headers, "Accept-Encoding": "identity"}
        if proxy_auth is not None and parsed.scheme == "http":
            sent.update(proxy_auth)
        try:
            resp = await session.request(
                method,
                parsed,
                data=body if body or method not in BODILESS_METHODS else None,
                headers=sent,
                timeout=bound,
                allow_redirects=False,
                proxy=proxy.url if proxy is not None else None,
                proxy_headers=proxy_auth,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise upstream_error(exc) from exc
        if resp.status == 407 and proxy is not None:
            resp.close()
            raise proxy_refusal(proxy, 407)
        if resp.status == 101:
            resp.close()
            raise UpstreamProtocolError(
                "the upstream switched protocols (101), which was not asked for"
            )
        try:
            return AiohttpResponse(resp, self._settings.max_response_bytes)
        except UpstreamError:
            resp.close()
            raise

    async def close(self) -> None:
        """Close every pooled connection."""
        if self._session is not None:
            await self._session.close()
            self._session = None
