"""Rate-limit headers of an upstream answer, parsed into the few numbers a record keeps.

Anthropic sends `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,
remaining,reset}` (reset as an RFC 3339 time); OpenAI sends `x-ratelimit-{limit,remaining,
reset}-{requests,tokens}` (reset as a duration such as "6m0s" or "1.5s"); both may send
`retry-after` (seconds or an HTTP date).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

import orjson

from driftgate.proxy.cooldown import parse_retry_after
from driftgate.proxy.observe.records import MOST

PREFIXES = ("anthropic-ratelimit-", "x-ratelimit-")
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?"
                       r"(?:(\d+(?:\.\d+)?)ms)?")  # fmt: skip


class RateLimit:
    """What the record stores: request/token limits and what remains, the soonest reset."""

    __slots__ = ("raw", "requests_limit", "requests_remaining", "reset_s", "retry_after_s",
                 "tokens_limit", "tokens_remaining")  # fmt: skip

    def __init__(self) -> None:
        self.requests_limit: int | None = None
        self.requests_remaining: int | None = None
        self.tokens_limit: int | None = None
        self.tokens_remaining: int | None = None
        self.reset_s: float | None = None
        self.retry_after_s: float | None = None
        self.raw: str | None = None


_FIELDS = {
    "anthropic-ratelimit-requests-limit": "requests_limit",
    "anthropic-ratelimit-requests-remaining": "requests_remaining",
    "anthropic-ratelimit-tokens-limit": "tokens_limit",
    "anthropic-ratelimit-tokens-remaining": "tokens_remaining",
    "x-ratelimit-limit-requests": "requests_limit",
    "x-ratelimit-remaining-requests": "requests_remaining",
    "x-ratelimit-limit-tokens": "tokens_limit",
    "x-ratelimit-remaining-tokens": "tokens_remaining",
}


# What an answer with no rate-limit header gives (most answers of most upstreams): one instance,
# never changed, instead of a new one per request.
NO_LIMITS = RateLimit()


def parse_ratelimit(headers: Mapping[str, str] | None, now: float) -> RateLimit:
    """The rate-limit facts in `headers` (an upstream answer's), `now` as Unix time for resets.

    Read-only: an answer without rate-limit headers gives the shared NO_LIMITS.
    """
    if not headers or _ignored.issuperset(headers):  # one C-level pass over the names
        return NO_LIMITS
    out = NO_LIMITS
    raw: dict[str, str] = {}
    resets: list[float] = []
    for name, value in headers.items():
        lower = _read.get(name, _UNSEEN)
        if lower is _UNSEEN:
            lower = _classify(name)
        if lower is None:
            continue
        if out is NO_LIMITS:
            out = RateLimit()
        if lower == "retry-after":
            raw[lower] = value
            out.retry_after_s = parse_retry_after(value, lambda: now)
            continue
        raw[lower] = value
        attr = _FIELDS.get(lower)
        if attr is not None:
            number = _int(value)
            if number is not None:
                setattr(out, attr, number)
        elif lower.endswith("-reset") or lower.startswith("x-ratelimit-reset-"):
            seconds = _reset_seconds(value, now)
            if seconds is not None:
                resets.append(seconds)
    if resets:
        out.reset_s = min(resets)
    if raw:
        out.raw = orjson.dumps(raw).decode()
    return out


_UNSEEN = ""  # a name not classified yet (no header name is empty)
_CACHE_LIMIT = 4096  # distinct names remembered; past it a name is classified each time
_read: dict[str, str | None] = {}  # as the upstream spelled it -> lower-cased if read here
_ignored: set[str] = set()  # of those, the names not read here (as spelled)


def _classify(name: str) -> str | None:
    """`name` lower-cased when it is retry-after or a rate-limit header, else None."""
    lower = name.lower()
    read = lower if lower == "retry-after" or lower.startswith(PREFIXES) else None
    if len(_read) < _CACHE_LIMIT:
        _read[name] = read
        if read is None:
            _ignored.add(name)
    return read


def _int(value: str) -> int | None:
    """The header's integer; None when it is none, or past what the usage table keeps."""
    try:
        number = int(value.strip())
    except ValueError:
        return None
    return number if -MOST - 1 <= number <= MOST else None


def _reset_seconds(value: str, now: float) -> float | None:
    """Seconds until a reset given as an RFC 3339 time (Anthropic) or a duration (OpenAI)."""
    text = value.strip()
    if not text:
        return None
    if "T" in text or text.count("-") >= 2:
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return max(0.0, when.timestamp() - now)
    match = _DURATION.fullmatch(text)
    if not match or not any(match.groups()):
        try:
            return max(0.0, float(text))
        except ValueError:
            return None
    h, m, s, ms = (float(g) if g else 0.0 for g in match.groups())
    return h * 3600 + m * 60 + s + ms / 1000
