"""The headers of the client's answer: driftgate's own (backend, dropped, adjusted) and the
upstream's that a client may act on."""

from __future__ import annotations

from collections.abc import Mapping

from driftgate.proxy.count_tokens import ESTIMATE_HEADER
from driftgate.proxy.flow import Flow
from driftgate.proxy.forward import Prepared
from driftgate.proxy.upstream.transport import Response

JSON_CT = "application/json"
BACKEND = "x-driftgate-backend"
DROPPED = "x-driftgate-dropped"
# Upstream response headers a client may act on (rate limits, request ids, retry hints).
PASS_HEADERS = frozenset(
    {
        "request-id",
        "x-request-id",
        "retry-after",
        "retry-after-ms",
        "x-should-retry",
        "openai-processing-ms",
    }
)
PASS_PREFIXES = ("anthropic-ratelimit-", "x-ratelimit-")
# Plain HTTP retry hints mean the same in either dialect; SDKs of both read them.
RETRY_HEADERS = ("retry-after", "retry-after-ms")
SSE_HEADERS: Mapping[str, str] = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}


def answer_headers(flow: Flow, p: Prepared, upstream: Response) -> dict[str, str]:
    """driftgate's headers for `p`'s answer, plus the upstream's a client may act on."""
    headers = {BACKEND: p.route.backend.name}
    if p.dropped:
        headers[DROPPED] = ",".join(p.dropped)
    headers.update(p.added_headers)
    if not flow.translated:
        passed_headers(upstream.headers, headers)
    elif upstream.status >= 400:
        retry_headers(upstream.headers, headers)
    return headers


def also_dropped(headers: dict[str, str], before: tuple[str, ...], more: tuple[str, ...]) -> None:
    """Name in `headers` what translating the answer dropped, after what the request dropped."""
    dropped = [*before, *(d for d in more if d not in before)]
    headers[DROPPED] = ",".join(dropped)


def whole_content_type(flow: Flow, upstream: Response) -> str:
    """The content type of a whole answer: JSON, or the upstream's own when relayed as sent."""
    if flow.translated:
        return JSON_CT
    # The usual exact "application/json" skips aiohttp's content-type parse (~0.7 us).
    if upstream.headers.get("Content-Type") == JSON_CT:
        return JSON_CT
    return upstream.content_type or JSON_CT


def estimate_headers(backend: str) -> dict[str, str]:
    """The headers of a count the gateway estimated itself (no upstream asked)."""
    return {ESTIMATE_HEADER: "true", BACKEND: backend}


def passed_headers(upstream: Mapping[str, str], out: dict[str, str]) -> dict[str, str]:
    """Copy into `out` the upstream headers a client may act on."""
    passing = _passing
    for name, value in upstream.items():
        lower = passing.get(name, _UNSEEN)
        if lower is _UNSEEN:
            lower = _classify(name)
        if lower is not None:
            out[lower] = value
    return out


_UNSEEN = ""  # a name not classified yet (no header name is empty)
_CACHE_LIMIT = 4096  # distinct names remembered; past it a name is classified each time
_passing: dict[str, str | None] = {}  # as the upstream spelled it -> lower-cased if passed on


def _classify(name: str) -> str | None:
    """`name` lower-cased when a client may act on it, else None; remembered per spelling."""
    lower = name.lower()
    passed = lower if lower in PASS_HEADERS or lower.startswith(PASS_PREFIXES) else None
    if len(_passing) < _CACHE_LIMIT and len(name) <= 64:  # a longer name: classified each time
        _passing[name] = passed
    return passed


def retry_headers(upstream: Mapping[str, str], out: dict[str, str]) -> dict[str, str]:
    """Copy into `out` the upstream's retry hints (for a client of the other dialect)."""
    for name in RETRY_HEADERS:
        value = upstream.get(name)
        if value is not None:
            out[name] = value
    return out
