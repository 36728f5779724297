"""The HTTP seam of `driftgate top`: /health, /analytics, /analytics/stream and /guard/resume."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson

from driftgate.proxy.errors import DriftgateError

# The stream sends a keep-alive comment every 15 s: a silence twice as long means a dead link.
STREAM_READ_TIMEOUT = 35.0


class GatewayUnreachable(DriftgateError):
    """Nothing answers at the gateway's URL (not running, wrong port, or gone away)."""


class GatewayRefused(DriftgateError):
    """The gateway answered with an error (a wrong gateway key, analytics turned off...)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _refused(resp: httpx.Response, what: str) -> GatewayRefused:
    try:
        message = str(resp.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = resp.text[:200] or resp.reason_phrase
    return GatewayRefused(f"{what}: the gateway answered {resp.status_code}: {message}",
                          resp.status_code)  # fmt: skip


def _unreachable(url: str, exc: httpx.HTTPError) -> GatewayUnreachable:
    return GatewayUnreachable(f"no gateway answers at {url} ({_why(exc)})")


def _why(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "nothing accepts connections there"
    if isinstance(exc, httpx.ConnectTimeout):
        return "connecting timed out"
    if isinstance(exc, httpx.TimeoutException):
        return "it stopped answering"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection broke"
    return str(exc) or type(exc).__name__


class GatewayClient:
    """One running gateway, by URL; the gateway key (when it has one) goes in every request."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)

    async def _json(self, method: str, path: str, what: str) -> dict[str, Any]:
        try:
            resp = await self._http.request(method, path)
        except httpx.HTTPError as exc:
            raise _unreachable(self.url, exc) from None
        if resp.status_code != 200:
            raise _refused(resp, what)
        try:
            doc = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            raise GatewayRefused(f"{what}: the answer is not JSON", resp.status_code) from None
        if not isinstance(doc, dict):
            raise GatewayRefused(f"{what}: the answer is not a JSON object", resp.status_code)
        return doc

    async def health(self, probe: bool = False) -> dict[str, Any]:
        """GET /health (?probe=1 sends one minimal real request per backend)."""
        return await self._json("GET", "/health?probe=1" if probe else "/health", "health")

    async def analytics(self, window: str) -> dict[str, Any]:
        """GET /analytics?window=...: totals per model, backend, client and session."""
        return await self._json("GET", f"/analytics?window={window}", "analytics")

    async def resume(self) -> dict[str, Any]:
        """POST /guard/resume: lift the spend guard's halt."""
        return await self._json("POST", "/guard/resume", "resume")

    async def records(
        self, on_open: Callable[[], None] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Each record of GET /analytics/stream as it arrives; ends when the stream does.

        `on_open` is called at the stream's first line, which the gateway writes once it has
        subscribed us: a record finished after that call reaches us.
        """
        timeout = httpx.Timeout(self._http.timeout.connect, read=STREAM_READ_TIMEOUT)
        try:
            async with self._http.stream("GET", "/analytics/stream", timeout=timeout) as resp:
                if resp.status_code != 200:
                    await resp.aread()
                    raise _refused(resp, "live stream")
                async for event, data in _events(resp.aiter_lines(), on_open):
                    if event == "record":
                        yield data
                    elif event == "dropped":
                        return  # fell behind: the caller reconnects
        except httpx.HTTPError as exc:
            raise _unreachable(self.url, exc) from None

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()


async def _events(
    lines: AsyncIterator[str], on_open: Callable[[], None] | None
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Server-sent events as (event name, JSON data object); comments and non-objects skipped."""
    event = "message"
    data: list[str] = []
    async for line in lines:
        if on_open is not None:
            on_open()
            on_open = None
        if not line:
            if data:
                try:
                    doc = orjson.loads("\n".join(data))
                except orjson.JSONDecodeError:
                    doc = None
                if isinstance(doc, dict):
                    yield event, doc
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
