"""Opening a connection: a short DNS cache, happy eyeballs, and CONNECT tunnels through a proxy."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aiohappyeyeballs

from driftgate.proxy.upstream.errors import UpstreamConnectError
from driftgate.proxy.upstream.failure_words import in_words
from driftgate.proxy.upstream.proxies import Proxy

AddrInfo = tuple[Any, ...]
Resolve = Callable[[str, int], Awaitable[list[AddrInfo]]]  # host, port -> getaddrinfo's answer
MAX_PROXY_HEAD = 16384


async def system_resolve(host: str, port: int) -> list[AddrInfo]:
    """The system resolver (getaddrinfo in a thread, as asyncio does)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [tuple(i) for i in infos]


class Resolver:
    """A resolve function, remembered for `ttl` seconds (new connections reuse the answer)."""

    def __init__(self, ttl: float, resolve: Resolve | None = None) -> None:
        self._ttl = ttl
        self._resolve = resolve or system_resolve
        self._cache: dict[tuple[str, int], tuple[float, list[AddrInfo]]] = {}

    async def resolve(self, host: str, port: int) -> list[AddrInfo]:
        """The addresses for host:port (cached); UpstreamConnectError when there are none."""
        now = asyncio.get_running_loop().time()
        hit = self._cache.get((host, port))
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            infos = await self._resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise UpstreamConnectError(f"cannot resolve {host}: {in_words(exc)}") from exc
        if not infos:
            raise UpstreamConnectError(f"cannot resolve {host}: no addresses")
        if len(self._cache) > 256:
            self._cache.clear()
        self._cache[(host, port)] = (now + self._ttl, infos)
        return infos

    def forget(self, host: str, port: int) -> None:
        """Drop a cached answer (its addresses just failed)."""
        self._cache.pop((host, port), None)


async def open_socket(
    resolver: Resolver, host: str, port: int, happy_eyeballs_delay: float | None
) -> socket.socket:
    """A connected non-blocking socket, racing the host's addresses (RFC 8305) when several."""
    infos = await resolver.resolve(host, port)
    try:
        return await aiohappyeyeballs.start_connection(
            infos,
            happy_eyeballs_delay=happy_eyeballs_delay,
            interleave=1 if happy_eyeballs_delay is not None else None,
        )
    except OSError as exc:
        resolver.forget(host, port)  # the next attempt resolves afresh
        raise UpstreamConnectError(f"cannot connect to {host}:{port}: {in_words(exc)}") from exc


async def tunnel(sock: socket.socket, host: str, port: int, proxy: Proxy) -> None:
    """Ask `proxy` (connected on `sock`) for a CONNECT tunnel to host:port."""
    loop = asyncio.get_running_loop()
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    if proxy.authorization is not None:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    head = b""
    while b"\r\n\r\n" not in head:  # the proxy says nothing more until TLS starts: no over-read
        data = await loop.sock_recv(sock, 4096)
        if not data:
            raise UpstreamConnectError(f"the proxy {proxy.shown} closed the tunnel to {target}")
        head += data
        if len(head) > MAX_PROXY_HEAD:
            raise UpstreamConnectError(f"the proxy {proxy.shown} sent an oversized answer")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or parts[1] != "200":
        raise UpstreamConnectError(
            f"the proxy {proxy.shown} refused a tunnel to {target}: {status_line[:200]!r}"
            + _hint(parts[1] if len(parts) > 1 else "")
        )
    if not head.endswith(b"\r\n\r\n"):
        raise UpstreamConnectError(f"the proxy {proxy.shown} sent bytes before the tunnel opened")


def proxy_refusal(proxy: Proxy, status: int) -> UpstreamConnectError:
    """The error for a proxy that answered an absolute-form request itself (407)."""
    return UpstreamConnectError(f"the proxy {proxy.shown} answered {status}{_hint(str(status))}")


def _hint(status: str) -> str:
    if status == "407":
        return " (it wants credentials: put them in the proxy URL, http://user:password@host:port)"
    return ""
