"""GET /health?probe=1: one real, minimal request per backend, to tell what /health cannot.

The probe lists the backend's models (`GET /v1/models`, `GET {base}/models` on OpenAI-compatible
servers): it needs the backend's key, reaches the same host as completions and costs nothing.
Results are cached for PROBE_TTL seconds and concurrent probes share one round.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from driftgate.proxy.auth import BackendAuth
from driftgate.proxy.config import BackendConfig
from driftgate.proxy.upstream.proxies import ProxyChooser

PROBE_TTL = 30.0
PROBE_TIMEOUT = 10.0  # seconds for a whole probe, on top of the backend's connect timeout

OK = "ok"
AUTH_FAILED = "auth_failed"
UNREACHABLE = "unreachable"
ERROR = "error"
SKIPPED = "skipped"

ProbeOne = Callable[[BackendAuth], Awaitable[dict[str, Any]]]


def probe_url(auth: BackendAuth) -> str:
    """Where a backend lists its models."""
    base = auth.backend.base_url
    return base + "/v1/models" if auth.dialect == "anthropic" else base + "/models"


def probe_headers(auth: BackendAuth, anthropic_version: str) -> dict[str, str]:
    """The backend's own credentials (never a client's), as a completion would carry them."""
    headers = {k: v for k, v in auth.base_headers.items() if k.lower() != "content-type"}
    if auth.dialect == "anthropic":
        headers.setdefault("anthropic-version", anthropic_version)
    return headers


class Prober:
    """Probes every backend, caches the answer, coalesces concurrent callers."""

    def __init__(
        self,
        auths: Mapping[str, BackendAuth],
        anthropic_version: Callable[[], str],
        clock: Callable[[], float] = time.monotonic,
        ttl: float = PROBE_TTL,
        tls: Callable[[BackendConfig], ssl.SSLContext] | None = None,
        proxies: ProxyChooser | None = None,
    ) -> None:
        self._proxies = proxies  # HTTP(S)_PROXY / NO_PROXY, as completions go
        self._auths = auths
        self._tls = tls  # the backend's TLS settings (CA bundle, client certificate)
        self._version = anthropic_version
        self._clock = clock
        self._ttl = ttl
        self._result: list[dict[str, Any]] | None = None
        self._at = 0.0
        self._running: asyncio.Future[list[dict[str, Any]]] | None = None
        self.rounds = 0  # probe rounds actually sent (the rest were served from the cache)

    async def probe(self) -> list[dict[str, Any]]:
        """Each backend's state: ok, auth_failed, unreachable, error or skipped, with latency."""
        if self._result is not None and self._clock() - self._at < self._ttl:
            return self._result
        if self._running is None:
            self._running = asyncio.ensure_future(self._round())
        running = self._running
        try:
            return await asyncio.shield(running)
        finally:
            if running.done() and self._running is running:
                self._running = None

    async def _round(self) -> list[dict[str, Any]]:
        self.rounds += 1
        version = self._version()
        async with aiohttp.ClientSession() as session:
            results = await asyncio.gather(
                *(self._one(session, auth, version) for auth in self._auths.values())
            )
        self._result, self._at = list(results), self._clock()
        return self._result

    async def _one(
        self, session: aiohttp.ClientSession, auth: BackendAuth, version: str
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"name": auth.backend.name, "url": probe_url(auth)}
        if auth.passthrough:
            out.update(state=SKIPPED, message="passthrough: each client's own credentials are used")
            return out
        timeout = aiohttp.ClientTimeout(
            total=auth.backend.connect_timeout + PROBE_TIMEOUT,
            sock_connect=auth.backend.connect_timeout,
        )
        url = probe_url(auth)
        tls: ssl.SSLContext | bool = True
        if self._tls is not None and url.startswith("https:"):
            tls = self._tls(auth.backend)
        proxy_url, proxy_headers = self._proxy(url)
        started = self._clock()
        try:
            async with session.get(
                url,
                headers=probe_headers(auth, version),
                timeout=timeout,
                ssl=tls,
                proxy=proxy_url,
                proxy_headers=proxy_headers,
            ) as resp:
                await resp.read()
                status = resp.status
        except TimeoutError:
            out.update(state=UNREACHABLE, message="timed out")
            return out
        except aiohttp.ClientError as exc:
            out.update(state=UNREACHABLE, message=_reason(exc))
            return out
        out["latency_ms"] = round((self._clock() - started) * 1000.0, 1)
        out["status"] = status
        if status < 300:
            out["state"] = OK
        elif status in (401, 403):
            out.update(state=AUTH_FAILED, message="the backend refused its key")
        else:
            out.update(state=ERROR, message=f"the backend answered HTTP {status}")
        return out

    def _proxy(self, url: str) -> tuple[str | None, dict[str, str] | None]:
        if self._proxies is None or not self._proxies.active:
            return None, None
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        proxy = self._proxies.choose(parts.scheme, parts.hostname or "", port)
        if proxy is None:
            return None, None
        auth = proxy.authorization
        return proxy.url, ({"Proxy-Authorization": auth} if auth else None)


def _reason(exc: aiohttp.ClientError) -> str:
    """Why a connection failed, without anything secret (host, port, OS reason)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port}: {exc.os_error.strerror or exc.os_error}"
    return type(exc).__name__
