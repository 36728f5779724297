"""The fast transport: the gateway's own HTTP/1.1 client, a keep-alive pool per host.

It does only what the gateway needs, at about half the CPU per request of aiohttp's client
(bench/README.md): POST with a body, HTTP/1.1 keep-alive, TLS (a CA bundle, client
certificates), forward proxies (CONNECT tunnels, absolute-form), content-length / chunked /
close-delimited bodies, bounded gzip and deflate decoding, connect / read / total bounds,
happy eyeballs, a short DNS cache and a per-host connection limit. It passes the same
conformance suite as the aiohttp transport (tests/proxy/upstream/test_conformance.py).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Coroutine, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from driftgate.proxy.upstream.connection import Connection, UpstreamResponse
from driftgate.proxy.upstream.dialing import (
    Resolve,
    Resolver,
    open_socket,
    proxy_refusal,
    tunnel,
)
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

__all__ = [
    "Timeouts",
    "UpstreamClient",
    "UpstreamConnectError",
    "UpstreamDisconnected",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamResponse",
    "UpstreamTimeout",
    "UpstreamTruncated",
]

_TARGET_CACHE = 1024  # URLs differ only by backend and query string: a small memo suffices
_IDLE_PER_HOST = 256
# No Content-Length without a body (RFC 9110 8.6); other methods send "0", as aiohttp does.


class _Target(NamedTuple):
    key: tuple[str, str, int]  # scheme, host, port: which pool
    prefix: str  # "POST /path?query HTTP/1.1\r\nHost: host:port\r\n"
    lines: int  # line breaks in `prefix`
    proxy: Proxy | None


class UpstreamClient:
    """Pooled keep-alive connections to any number of upstream hosts."""

    def __init__(
        self,
        settings: TransportSettings | None = None,
        ssl_context: ssl.SSLContext | None = None,
        resolve: Resolve | None = None,
    ) -> None:
        self._settings = settings = settings or TransportSettings()
        self._ssl = ssl_context
        self._idle_seconds = settings.idle_seconds
        self._idle: dict[tuple[str, str, int], list[Connection]] = {}  # oldest first
        self._sweep: asyncio.TimerHandle | None = None
        self._targets: dict[str, _Target] = {}
        self._closed = False
        self._proxies = ProxyChooser(settings.proxies)  # ConfigError now for a bad proxy URL
        self._resolver = Resolver(DNS_TTL, resolve)
        # max_connections_per_host: open connections per pool key, and who waits for one
        self._limit = settings.max_connections_per_host
        self._open: dict[tuple[str, str, int], int] = {}
        self._waiting: dict[tuple[str, str, int], list[asyncio.Future[None]]] = {}

    def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeouts: Timeouts
    ) -> Coroutine[Any, Any, UpstreamResponse]:
        """Send a POST; return once the response's status and headers arrived."""
        return self.request("POST", url, body, headers, timeouts)

    async def request(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str], timeouts: Timeouts
    ) -> UpstreamResponse:
        """Send a request of any method (a POST: the completions; others: the endpoints the
        gateway forwards as they are); return once the response's status and headers arrived.
        A bodiless GET or HEAD goes without a Content-Length; after a HEAD the caller closes the
        response unread."""
        if method == "POST":
            target = self._targets.get(url) or self._target(url)
            data = _request_bytes(target, headers, body)
        else:
            key = f"{method} {url}"
            target = self._targets.get(key) or self._target(url, method, key)
            if body or method not in BODILESS_METHODS:
                data = _request_bytes(target, headers, body)
            else:
                data = _bodiless_request_bytes(target, headers)
        conn = self._take(target.key)
        total = timeouts.total
        if conn is not None:
            # The pooled connection's loop is the running one: asking asyncio for it costs a
            # getpid(2) call (Python 3.11 checks the process on every get_running_loop).
            deadline = None if total is None else conn.loop.time() + total
        else:  # connecting counts against the total bound too
            deadline = None if total is None else asyncio.get_running_loop().time() + total
            bound = timeouts.connect if total is None else min(timeouts.connect, total)
            conn = await self._connection(target, bound)
        head = conn.send(data, timeouts.read, deadline)
        if timeouts.read is None:  # no bound per wait (the total's timer runs): await it as is
            try:
                resp = await head
            except asyncio.CancelledError:
                conn.close()
                raise
        else:
            resp = await conn.bounded(head)
        if resp.status == 407 and target.proxy is not None:
            resp.close()
            raise proxy_refusal(target.proxy, 407)
        return resp

    def lost(self, conn: Connection) -> None:
        """A connection ended: under a per-host limit, its slot goes to the next waiter."""
        if self._limit and conn.counted:
            conn.counted = False
            self._open[conn.key] -= 1
            self._wake_one(conn.key)

    def _wake_one(self, key: tuple[str, str, int]) -> None:
        waiting = self._waiting.get(key)
        while waiting:
            fut = waiting.pop(0)
            if not fut.done():
                fut.set_result(None)
                return

    async def _connection(self, target: _Target, bound: float) -> Connection:
        """A new connection, or under max_connections_per_host one freed within `bound`."""
        if not self._limit:
            return await self._connect(target, bound)
        key = target.key
        loop = asyncio.get_running_loop()
        deadline = loop.time() + bound
        while self._open.get(key, 0) >= self._limit:
            fut: asyncio.Future[None] = loop.create_future()
            self._waiting.setdefault(key, []).append(fut)
            try:
                async with asyncio.timeout_at(deadline):
                    await fut
            except TimeoutError:
                raise UpstreamTimeout(
                    f"no connection to {key[1]}:{key[2]} came free within {bound:g} s "
                    f"(max_connections_per_host = {self._limit})"
                ) from None
            finally:
                if fut in self._waiting.get(key, ()):
                    self._waiting[key].remove(fut)
            conn = self._take(key)
            if conn is not None:
                return conn
        self._open[key] = self._open.get(key, 0) + 1
        try:
            conn = await self._connect(target, max(deadline - loop.time(), 0.0))
        except BaseException:
            self._open[key] -= 1
            self._wake_one(key)
            raise
        conn.counted = True
        return conn

    def put(self, conn: Connection) -> None:
        """A connection whose exchange completed, ready for the next request to its host."""
        idle = self._idle.setdefault(conn.key, [])
        if self._closed or len(idle) >= _IDLE_PER_HOST:
            conn.close()
            return
        conn.idle_since = conn.loop.time()
        idle.append(conn)
        if self._limit:
            self._wake_one(conn.key)
        if self._sweep is None:
            self._sweep = conn.loop.call_later(self._idle_seconds, self._expire_idle)

    def idle_count(self) -> int:
        """Idle pooled connections, all hosts."""
        return sum(len(v) for v in self._idle.values())

    async def close(self) -> None:
        """Close every pooled connection; later releases close theirs."""
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()

    def _expire_idle(self) -> None:
        """Close connections idle past idle_seconds (a timer, so quiet hosts are swept too)."""
        self._sweep = None
        loop = asyncio.get_running_loop()
        cutoff = loop.time() - self._idle_seconds
        for idle in self._idle.values():
            while idle and (idle[0].idle_since <= cutoff or not idle[0].is_usable()):
                idle.pop(0).close()
        if any(self._idle.values()):
            self._sweep = loop.call_later(self._idle_seconds, self._expire_idle)

    def _take(self, key: tuple[str, str, int]) -> Connection | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to have timed out
            if conn.is_usable() and conn.loop.time() - conn.idle_since < self._idle_seconds:
                return conn
            conn.close()
        return None

    async def _connect(self, target: _Target, bound: float) -> Connection:
        scheme, host, port = key = target.key
        proxy = target.proxy
        loop = asyncio.get_running_loop()
        tls: ssl.SSLContext | None = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = tls_context(self._settings)
            tls = self._ssl
        where = (
            f"{host}:{port}" if proxy is None else f"{host}:{port} through the proxy {proxy.shown}"
        )
        delay = self._settings.happy_eyeballs_delay
        sock: socket.socket | None = None
        try:
            async with asyncio.timeout(bound):
                if proxy is None:
                    sock = await open_socket(self._resolver, host, port, delay)
                else:
                    sock = await open_socket(self._resolver, proxy.host, proxy.port, delay)
                    if tls is not None:
                        await tunnel(sock, host, port, proxy)
                _, conn = await loop.create_connection(
                    lambda: Connection(loop, self, key, self._settings.max_response_bytes),
                    sock=sock,
                    ssl=tls,
                    server_hostname=host if tls is not None else None,
                )
        except TimeoutError as exc:
            _close(sock)
            raise UpstreamTimeout(f"connecting to {where} took over {bound:g} s") from exc
        except UpstreamConnectError:
            _close(sock)
            raise
        except (OSError, ssl.SSLError, ssl.CertificateError, ValueError) as exc:  # ValueError: IDNA
            _close(sock)
            raise UpstreamConnectError(f"cannot connect to {where}: {in_words(exc)}") from exc
        except BaseException:
            _close(sock)
            raise
        return conn

    def _target(self, url: str, method: str = "POST", key: str | None = None) -> _Target:
        try:
            parts = urlsplit(url)
            given_port = parts.port
        except ValueError as exc:
            raise UpstreamConnectError(f"not a usable URL: {url!r} ({exc})") from exc
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise UpstreamConnectError(f"not an http(s) URL: {url!r}")
        if parts.username is not None or parts.password is not None:
            raise UpstreamConnectError("credentials in a base_url are not sent: use key or key_env")
        default = 443 if scheme == "https" else 80
        port = default if given_port is None else given_port
        if port == 0:
            raise UpstreamConnectError(f"port 0 in {url!r}")
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        host_header = shown if port == default else f"{shown}:{port}"
        path = request_target(parts.path, parts.query)
        proxy = self._proxies.choose(scheme, host, port) if self._proxies.active else None
        if proxy is not None and scheme == "http":  # absolute-form, to the proxy
            path = f"http://{host_header}{path}"
        prefix = f"{method} {path} HTTP/1.1\r\nHost: {host_header}\r\n"
        if proxy is not None and scheme == "http" and proxy.authorization is not None:
            prefix += f"Proxy-Authorization: {proxy.authorization}\r\n"
        target = _Target((scheme, host, port), prefix, prefix.count("\n"), proxy)
        if len(self._targets) >= _TARGET_CACHE:
            self._targets.clear()
        self._targets[url if key is None else key] = target
        return target


def _close(sock: socket.socket | None) -> None:
    if sock is not None and sock.fileno() != -1:
        sock.close()


def _request_bytes(target: _Target, headers: Mapping[str, str], body: bytes) -> bytes:
    """The request head and body; ValueError when a header would break the head's framing."""
    lines = [target.prefix]
    for name, value in headers.items():
        lines.append(f"{name}: {value}\r\n")
    lines.append(f"Content-Length: {len(body)}\r\nAccept-Encoding: identity\r\n\r\n")
    head = "".join(lines)
    # Each header adds exactly one CR and one LF; any other is an injected line.
    expected = target.lines + len(headers) + 3
    if head.count("\n") != expected or head.count("\r") != expected:
        raise ValueError("a request header name or value contains a line break")
    return head.encode("utf-8", "surrogateescape") + body  # one write: one send for most requests


def _bodiless_request_bytes(target: _Target, headers: Mapping[str, str]) -> bytes:
    """`_request_bytes` for a request without a body: no Content-Length (RFC 9110 8.6)."""
    lines = [target.prefix]
    for name, value in headers.items():
        lines.append(f"{name}: {value}\r\n")
    lines.append("Accept-Encoding: identity\r\n\r\n")
    head = "".join(lines)
    expected = target.lines + len(headers) + 2
    if head.count("\n") != expected or head.count("\r") != expected:
        raise ValueError("a request header name or value contains a line break")
    return head.encode("utf-8", "surrogateescape")
