"""A finished request as the loop keeps it (`Finished`), and its `RequestRecord`, built on the
recorder's thread: usage read from the answer, the cost priced, the request id, rate limits."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson

from driftgate.proxy.errors import Dialect
from driftgate.proxy.observe.client_agent import client_of
from driftgate.proxy.observe.pricing import Prices, priced, prices
from driftgate.proxy.observe.ratelimit import parse_ratelimit
from driftgate.proxy.observe.records import MOST, REASON_LIMIT, RequestRecord
from driftgate.proxy.redact import key_shapes_masked
from driftgate.proxy.routing import Route
from driftgate.proxy.sse import Usage
from driftgate.proxy.templates.loader import TemplateSet
from driftgate.proxy.translate import usage_from_response

CLIENT_GONE = 499  # nginx's convention: the client closed the connection first
_MISSING: Any = object()
# Request ids the gateway makes when the upstream sent none: unique per process, cheap to make.
_ID_PREFIX = f"dg-{uuid.uuid4().hex[:12]}-"
_next_id = itertools.count(1).__next__


def _new_id_prefix() -> None:
    """A forked worker's own prefix: its ids must not repeat the supervisor's or a sibling's."""
    global _ID_PREFIX, _next_id
    _ID_PREFIX = f"dg-{uuid.uuid4().hex[:12]}-"
    _next_id = itertools.count(1).__next__


os.register_at_fork(after_in_child=_new_id_prefix)

# A NamedTuple of all its fields made from a tuple of them: a record's generated __new__ is a
# Python function of 30 arguments (9 for Asked) that only packs them into that tuple again.
make: Any = tuple.__new__


class Finished(NamedTuple):
    """What is known when a response has been sent; turned into a record later.

    One flat tuple made once per request from the flow and the answer (the first nine fields
    are what the client asked for): not the Flow itself, whose parsed body and header map,
    held ~1,500 at a time until the next batch, the collector walked again and again.
    """

    endpoint: str
    client_dialect: Dialect
    model: str  # the model the client asked for
    stream: bool
    include_usage: bool
    session: str | None
    user_agent: str | None
    counting: bool
    ticket: Any  # the spend guard's reservation, settled with the record's cost
    route: Route
    upstream: Dialect
    status: int
    raw: bytes | None  # a whole upstream body to read usage from
    usage: Any  # usage already collected (streams, estimates)
    ttfb: float
    latency: float
    ts: float
    templates: TemplateSet | None
    headers: Mapping[str, str] | None  # the upstream answer's: request id, rate limits
    reason: str | None  # why the gateway ended or refused it (e.g. shutting down)
    outcome: str | None  # why the gateway refused it without forwarding (records.GUARD_*)


def usage_of(item: Finished) -> Any:
    if item.usage is not None:
        return item.usage
    if item.raw and (item.status < 400 or item.status == CLIENT_GONE):
        try:
            parsed = orjson.loads(item.raw)
        except orjson.JSONDecodeError:
            return Usage()
        if isinstance(parsed, dict):
            if item.counting:
                usage = Usage()
                usage.input_tokens = int(parsed.get("input_tokens") or 0)
                return usage
            return usage_from_response(parsed, item.upstream)
    return Usage()


def _kept(usage: Any) -> Usage:
    """`usage` with each count past what the usage table keeps recorded as its largest (an
    upstream reported 2**64 tokens: a bug of its own, which must not stop the recorder)."""
    return Usage(
        min(int(usage.input_tokens), MOST),
        min(int(usage.output_tokens), MOST),
        min(int(usage.cache_read_tokens), MOST),
        min(int(usage.cache_write_tokens), MOST),
        min(int(getattr(usage, "reasoning_tokens", 0)), MOST),
    )


def _usage_unreported(item: Finished, usage: Any) -> bool:
    """An OpenAI stream relayed as is, whose client did not ask for usage: the upstream sent none.

    The gateway does not add `stream_options.include_usage` for the client: that would change the
    chunks the client receives (a `usage` key on each, one extra chunk with no choices).
    """
    return (
        item.stream
        and item.client_dialect == "openai"
        and item.upstream == "openai"
        and not item.include_usage
        and not (usage.input_tokens or usage.output_tokens)
    )


def row_of(item: Finished, tables: dict[tuple[str, str, int], Prices | None]) -> RequestRecord:
    """The record of one finished request."""
    (
        endpoint, client_dialect, model_requested, stream, _, session, user_agent, is_count, _,
        route, upstream, status, _, usage, ttfb, latency, ts, templates, headers, reason, outcome,
    ) = item  # fmt: skip
    if usage is None:
        usage = usage_of(item)
    if max(usage.input_tokens, usage.output_tokens, usage.cache_read_tokens,
           usage.cache_write_tokens, getattr(usage, "reasoning_tokens", 0)) > MOST:  # fmt: skip
        usage = _kept(usage)
    cost: float | None = 0.0
    if outcome is not None:
        pass  # refused: nothing was forwarded, nothing spent
    elif stream and client_dialect == "openai" and _usage_unreported(item, usage):
        cost = None  # unknown, not free: `driftgate usage` marks the total as a lower bound
    elif not is_count and templates is not None:
        key = (route.model, upstream, id(templates))  # the batch keeps them alive
        table = tables.get(key, _MISSING)
        if table is _MISSING:
            table = tables[key] = prices(route.model, upstream, templates)
        cost = priced(
            table,
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
        )
    limits = parse_ratelimit(headers, ts)
    request_id = None
    if headers is not None:
        request_id = headers.get("request-id") or headers.get("x-request-id")
    client, version = client_of(user_agent)
    record: RequestRecord = make(
        RequestRecord,
        (
            ts,
            route.backend.name,
            key_shapes_masked(route.model),  # a key pasted as the model is never recorded
            client_dialect,
            upstream,
            endpoint,
            status,
            stream,
            int(usage.input_tokens),
            0 if is_count else int(usage.output_tokens),
            int(usage.cache_read_tokens),
            int(usage.cache_write_tokens),
            latency * 1000.0,
            ttfb * 1000.0 if ttfb else None,
            session,
            cost,
            request_id[:128] if request_id else f"{_ID_PREFIX}{_next_id()}",
            client,
            version,
            key_shapes_masked(model_requested),
            0 if is_count else int(getattr(usage, "reasoning_tokens", 0)),
            limits.requests_limit,
            limits.requests_remaining,
            limits.tokens_limit,
            limits.tokens_remaining,
            limits.reset_s,
            limits.retry_after_s,
            limits.raw,
            outcome,
            reason[:REASON_LIMIT] if reason else None,
        ),
    )
    return record
