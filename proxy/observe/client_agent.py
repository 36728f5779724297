"""Which client sent a request, from its User-Agent: a family and a version (never the raw string)."""

from __future__ import annotations

import re

# Families whose User-Agent is known: (pattern, family); the version is group 1.
_KNOWN: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"claude-cli/(\S+)"), "claude-cli"),
    (re.compile(r"codex[\w-]*/(\S+)"), "codex"),
    (re.compile(r"(?:Async)?OpenAI/Python (\S+)"), "openai-python"),
    (re.compile(r"(?:Async)?Anthropic/Python (\S+)"), "anthropic-python"),
    (re.compile(r"(?:Async)?OpenAI/JS (\S+)"), "openai-js"),
    (re.compile(r"(?:Async)?Anthropic/JS (\S+)"), "anthropic-js"),
)
# Anything else: its first product token ("curl/8.5.0"), names and versions kept short.
_PRODUCT = re.compile(r"([A-Za-z][\w.\-]{0,39})/([\w.\-+]{1,40})")
_CACHE_LIMIT = 1024
_cache: dict[str, tuple[str, str | None]] = {}


def client_of(user_agent: str | None) -> tuple[str, str | None]:
    """(family, version) for a User-Agent; ("other", None) when absent or unreadable."""
    if not user_agent:
        return "other", None
    found = _cache.get(user_agent)
    if found is None:
        found = _parse(user_agent)
        if len(_cache) < _CACHE_LIMIT:  # user agents repeat: most lookups are one dict hit
            _cache[user_agent] = found
    return found


def _parse(user_agent: str) -> tuple[str, str | None]:
    for pattern, family in _KNOWN:
        match = pattern.match(user_agent)
        if match:
            return family, match.group(1)[:40]
    match = _PRODUCT.match(user_agent)
    if match:
        return match.group(1).lower(), match.group(2)
    return "other", None
