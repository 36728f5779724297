"""`driftgate doctor`: where stored Responses conversations live, and whether that store answers."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from driftgate.proxy.cli.doctor_checks import Finding
from driftgate.proxy.config import Config
from driftgate.proxy.guard.settings import redact_url


def responses_store(config: Config) -> list[Finding]:
    """With [state] redis_url: the conversation store's Redis answers, and how much it holds."""
    if not config.state.redis_url:
        return []  # the file in DRIFTGATE_HOME: nothing to reach
    url = redact_url(config.state.redis_url)
    try:
        from driftgate.proxy.responses.redis_store import FAILURES, RedisConversations
    except ImportError:
        fix = "pip install 'driftgate[redis]', or remove [state] redis_url"
        return [
            Finding("responses", "fail", "[state] redis_url is set but redis is not installed", fix)
        ]
    # A person waits for this answer: a slower Redis than the request path allows still answers.
    state = replace(config.state, timeout_seconds=max(config.state.timeout_seconds, 2.0))

    async def ask() -> int:
        store = RedisConversations(state, config.responses)
        try:
            return await store.stored()
        finally:
            await store.aclose()

    try:
        count = asyncio.run(ask())
    except FAILURES as exc:
        meanwhile = (
            "each gateway continues only the conversations it stored itself (fail = open)"
            if config.state.fail == "open"
            else "Responses requests that store or continue a conversation get a 503 (fail = closed)"
        )
        fix = f"start Redis at {url} or correct [state] redis_url; until it answers, {meanwhile}"
        return [Finding("responses", "fail", f"Redis at {url} does not answer ({exc})", fix)]
    return [
        Finding(
            "responses",
            "ok",
            f"stored conversations in Redis at {url}: {count} responses under "
            f"{config.state.key_prefix!r}",
        )
    ]
