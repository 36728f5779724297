"""The completion and token-count endpoints clients call: one table, read once at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from driftgate.proxy.errors import Dialect

if TYPE_CHECKING:
    from driftgate.proxy.config import BackendConfig


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A client endpoint: its path, the dialect it speaks, and whether it only counts tokens."""

    name: str  # as recorded: "messages", "count_tokens", "chat", "responses", "input_tokens"
    path: str
    dialect: Dialect
    # Counts input tokens only: never streamed, translated, billed or held by the spend guard;
    # forwarded to a backend that speaks the dialect itself, otherwise estimated by the gateway.
    counts: bool = False


ENDPOINTS = (
    Endpoint("messages", "/v1/messages", "anthropic"),
    Endpoint("count_tokens", "/v1/messages/count_tokens", "anthropic", counts=True),
    Endpoint("chat", "/v1/chat/completions", "openai"),
    Endpoint("responses", "/v1/responses", "responses"),
    Endpoint("input_tokens", "/v1/responses/input_tokens", "responses", counts=True),
)
# The endpoints that only count: their records are counts, never completions (no output, no cost).
COUNTING = frozenset(e.name for e in ENDPOINTS if e.counts)


def speaks(backend: BackendConfig, dialect: Dialect) -> bool:
    """Whether `backend` takes requests in `dialect` as they are (no translation)."""
    if dialect == "responses":
        return backend.serves_responses
    return backend.kind == dialect
