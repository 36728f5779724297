"""One client request as it travels through the gateway (intake -> route -> forward -> respond -> record)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from driftgate.proxy.errors import Dialect
from driftgate.proxy.responses.turns import Loaded
from driftgate.proxy.routing import Route
from driftgate.proxy.templates.loader import TemplateSet


@dataclass(slots=True)
class Flow:
    """What the handlers learn about a request once, read by every later step."""

    endpoint: str  # the Endpoint's name: "messages", "count_tokens", "chat", "responses"...
    client_dialect: Dialect
    raw: bytes
    body: dict[str, Any]
    model: str
    stream: bool
    include_usage: bool
    headers: Mapping[str, str]
    query: str
    started: float
    session: str | None = None
    counting: bool = False  # a token count (Endpoint.counts): never streamed, translated or billed
    route: Route | None = None  # the route being tried (set by the fallback loop)
    ticket: Any = None  # the spend guard's reservation, settled when the request is recorded
    templates: TemplateSet | None = None  # the set the request was routed with (prices, limits)
    stored: Loaded | None = None  # Responses: what a shared conversation store read for it
    # Decided once by forward for the route that answered, read by respond and record:
    upstream: Dialect = "openai"  # the dialect the answering upstream speaks
    translated: bool = False  # request and answer cross dialects (else relayed as sent)
    streamed: bool = False  # the answer is an open SSE stream (else a whole body)
