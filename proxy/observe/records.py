"""The analytics record: one per request, metadata only (never content, never a credential).

`RequestRecord` is the stable type every consumer reads: the SQLite store, /metrics, the live
stream (/analytics/stream), OTLP spans and the spend guard. Its fields are the `usage` table's
columns in order (a NamedTuple inserts as it is); new fields are appended, never reordered, and
each arrives with a schema migration in `usage_db.MIGRATIONS`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from driftgate.proxy.endpoints import COUNTING

COUNT_TOKENS = "count_tokens"
# Outcomes of requests the gateway refused without forwarding them (RequestRecord.outcome).
GUARD_HALTED = "guard_halted"  # the spend guard is halted (a budget is reached, or a header rule)
GUARD_UNAVAILABLE = "guard_unavailable"  # the guard's store is unreachable and fails closed
REASON_LIMIT = 500  # characters of a reason kept
MOST = 2**63 - 1  # the largest integer SQLite (and PostgreSQL's bigint) keeps: counts stop there


class RequestRecord(NamedTuple):
    """One request as the gateway saw it: who asked, who answered, tokens, cost, timing, limits."""

    ts: float  # Unix time the response ended
    backend: str  # the configured backend that answered (or was last tried)
    model: str  # the model sent upstream (resolved from aliases and routes)
    client_dialect: str  # "anthropic" | "openai"
    upstream_dialect: str
    endpoint: str  # "messages" | "chat" | "responses" | "count_tokens" | "input_tokens"
    status: int  # HTTP status the client got; 499 when it hung up first
    stream: bool
    input_tokens: int  # excludes cache reads and writes (Anthropic's meaning)
    output_tokens: int  # includes reasoning tokens
    cache_read_tokens: int
    cache_write_tokens: int
    latency_ms: float
    ttfb_ms: float | None  # until the upstream's first byte; None when there was none
    session: str | None  # x-claude-code-session-id (or x-session-id) when the client sent one
    cost_usd: float | None  # from the template's prices; None when unknown
    # schema 2
    request_id: str = ""  # the upstream's request id, else one the gateway made ("dg-...")
    client: str = "other"  # client family from the User-Agent: claude-cli, codex, openai-python...
    client_version: str | None = None
    model_requested: str = ""  # the model name the client asked for
    reasoning_tokens: int = 0
    rl_requests_limit: int | None = None  # rate-limit headers of the answer, parsed
    rl_requests_remaining: int | None = None
    rl_tokens_limit: int | None = None
    rl_tokens_remaining: int | None = None
    rl_reset_s: float | None = None  # seconds until the soonest limit resets
    retry_after_s: float | None = None
    ratelimit: str | None = None  # every rate-limit header as sent, as a JSON object
    # schema 3
    outcome: str | None = None  # None: forwarded; else why the gateway refused it (REFUSALS)
    reason: str | None = None  # the gateway's own words when it refused or ended the request

    def as_json(self) -> dict[str, Any]:
        """The record as a JSON object (what /analytics/stream sends)."""
        doc = self._asdict()
        doc["stream"] = bool(doc["stream"])
        return doc


COLUMNS: tuple[str, ...] = RequestRecord._fields


def as_stored(rec: RequestRecord) -> RequestRecord:
    """A token count (count_tokens, input_tokens) is never a completion: no output, no cost."""
    if rec.endpoint in COUNTING and (rec.output_tokens or rec.cost_usd != 0.0):
        return rec._replace(output_tokens=0, cost_usd=0.0, reasoning_tokens=0)
    return rec
