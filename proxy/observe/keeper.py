"""After each response: one analytics record and one log line, batched off the request path.

The loop only appends a small tuple per request (`Finished`); every FLUSH_EVERY seconds the batch
goes to the recorder's thread, which builds the `RequestRecord`s, the log lines, and feeds sinks.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from driftgate.proxy.errors import Dialect
from driftgate.proxy.flow import Flow
from driftgate.proxy.observe.client_agent import client_of
from driftgate.proxy.observe.log_output import BATCHED, direct_handler, end_batch
from driftgate.proxy.observe.pricing import Prices, priced, prices
from driftgate.proxy.observe.ratelimit import parse_ratelimit
from driftgate.proxy.observe.recorder import Recorder
from driftgate.proxy.observe.records import MOST, REASON_LIMIT, RequestRecord
from driftgate.proxy.observe.usage_db import usage_db_path
from driftgate.proxy.redact import key_shapes_masked
from driftgate.proxy.respond.outcome import StreamResult
from driftgate.proxy.routing import Route
from driftgate.proxy.serve.drain import SHUTDOWN_REASON, SHUTDOWN_STATUS
from driftgate.proxy.sse import Usage
from driftgate.proxy.templates.loader import TemplateSet
from driftgate.proxy.translate import usage_from_response

log = logging.getLogger("driftgate.requests")
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
CLIENT_GONE = 499  # nginx's convention: the client closed the connection first
FLUSH_EVERY = 0.05  # seconds between batches (one process)
FLUSH_EVERY_MAX = 0.2  # the longest a worker of many waits between batches
# Handing each record to the recorder's thread as it finishes cost ~60 us a request
# (a thread wake-up and GIL hand-off) and one log call ~40 us; a batch pays that once.
# Building the batch's records and log lines on the loop cost 9-12 us a request, and flushing
# inline at 1024 pending made one request pay ~10 ms: the loop now only appends a tuple.
# The thread holds the GIL while it builds a batch: every 0.25 s (~1,800 requests) that made
# p99 at 16 connections 10 ms; every 0.05 s, 5.7 ms, at the same CPU per request.


Settle = Callable[[list[tuple[Any, float | None]]], None]


def flush_every(workers: int) -> float:
    """Seconds between one process's batches when `workers` processes share the traffic.

    Each of N workers sees about 1/N of the requests: flushing every N x FLUSH_EVERY keeps a
    batch as large as one process's, so the usage file takes as many transactions a second (and
    each recorder thread as many wake-ups a request) as with one process, not N times as many.
    Capped, so a worker killed outright loses at most FLUSH_EVERY_MAX seconds of records.
    """
    return min(FLUSH_EVERY * max(1, workers), FLUSH_EVERY_MAX)


# A NamedTuple of all its fields made from a tuple of them: a record's generated __new__ is a
# Python function of 30 arguments (9 for Asked) that only packs them into that tuple again.
_make: Any = tuple.__new__


def _route(flow: Flow) -> Route:
    """The route that answered, or was last tried (set before any upstream is asked)."""
    route = flow.route
    if route is None:
        raise ValueError("a request is recorded only once it has a route")
    return route


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


def _finished(
    flow: Flow,
    route: Route,
    upstream: Dialect,
    status: int,
    usage: Any,
    latency: float,
    ts: float,
    templates: TemplateSet | None,
    reason: str | None = None,
    outcome: str | None = None,
) -> Finished:
    """A request that ended without an upstream's answer read (refused, unanswered, estimated).

    The answered paths (`whole_done`, `stream_done`) make their tuple inline, in this order.
    """
    finished: Finished = _make(
        Finished,
        (
            flow.endpoint, flow.client_dialect, flow.model, flow.stream, flow.include_usage,
            flow.session, flow.headers.get("user-agent"), flow.counting, flow.ticket,
            route, upstream, status, None, usage, 0.0, latency, ts, templates, None, reason,
            outcome,
        ),
    )  # fmt: skip
    return finished


class RecordKeeper:
    """Collects finished requests; every `every` seconds (FLUSH_EVERY in one process, see
    `flush_every`) turns them into records and log lines.

    `enabled=False` (analytics and metrics both off) keeps nothing at all.
    """

    def __init__(
        self,
        recorder: Recorder,
        *,
        owned: bool,
        clock: Callable[[], float],
        enabled: bool = True,
        log_json: bool = False,
        wall: Callable[[], float] = time.time,
        every: float = FLUSH_EVERY,
    ) -> None:
        self.recorder = recorder
        self.every = every  # seconds between batches
        self._owned = owned
        self._clock = clock
        self._wall = wall  # the time of day each request finished (its record and log line)
        self._pending: list[Finished] = []
        # Set by the first record of a batch: an idle gateway's batcher sleeps until then
        # instead of waking every `every` seconds to find nothing.
        self._wake: asyncio.Event | None = None
        self._enabled = enabled
        self._log_json = log_json
        # The spend guard's settle_many([(ticket, cost), ...]), called on the recorder's thread with
        # each batch's records.
        self.settle: Settle | None = None

    def whole_done(
        self,
        flow: Flow,
        status: int,
        raw: bytes,
        ttfb: float,
        usage: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """A non-streamed exchange; its usage (unless already known) is read from the body later."""
        if not self._enabled:
            return
        route = flow.route
        if route is None:
            raise ValueError("a request is recorded only once it has a route")
        self._add(
            _make(
                Finished,
                (
                    flow.endpoint, flow.client_dialect, flow.model, flow.stream,
                    flow.include_usage, flow.session, flow.headers.get("user-agent"),
                    flow.counting, flow.ticket, route, flow.upstream, status, raw, usage, ttfb,
                    self._clock() - flow.started, self._wall(), flow.templates, headers, None,
                    None,
                ),
            )
        )  # fmt: skip

    def stream_done(
        self,
        flow: Flow,
        result: StreamResult,
        ttfb: float,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """A streamed exchange, with the usage the tap or translator saw."""
        if not self._enabled:
            return
        route = flow.route
        if route is None:
            raise ValueError("a request is recorded only once it has a route")
        if result.stopped:
            status, reason = SHUTDOWN_STATUS, SHUTDOWN_REASON
        else:
            status = CLIENT_GONE if result.client_gone else (502 if result.upstream_error else 200)
            reason = None
        self._add(
            _make(
                Finished,
                (
                    flow.endpoint, flow.client_dialect, flow.model, flow.stream,
                    flow.include_usage, flow.session, flow.headers.get("user-agent"),
                    flow.counting, flow.ticket, route, flow.upstream, status, None, result.usage,
                    ttfb, self._clock() - flow.started, self._wall(), flow.templates, headers,
                    reason, None,
                ),
            )
        )  # fmt: skip

    def client_gone(self, flow: Flow) -> None:
        """The client hung up before any upstream answered: status 499, no usage known."""
        self.unanswered(flow, CLIENT_GONE)

    def unanswered(self, flow: Flow, status: int, reason: str | None = None) -> None:
        """No upstream answer (client gone: 499; every route failed: 502/504; shutdown: 503)."""
        self._no_answer(flow, _route(flow), status, flow.templates, reason)

    def refused(self, flow: Flow, route: Route, status: int, outcome: str, reason: str) -> None:
        """The gateway refused the request before forwarding it (the spend guard): no usage."""
        self._no_answer(flow, route, status, None, reason, outcome)

    def _no_answer(
        self,
        flow: Flow,
        route: Route,
        status: int,
        templates: Any,
        reason: str | None,
        outcome: str | None = None,
    ) -> None:
        """A record with no usage: nothing answered, or the gateway refused first."""
        upstream: Dialect = "anthropic" if route.backend.kind == "anthropic" else "openai"
        latency = self._clock() - flow.started
        self._add(
            _finished(
                flow, route, upstream, status, Usage(), latency, self._wall(), templates, reason,
                outcome,
            )
        )  # fmt: skip

    def estimated(self, flow: Flow, tokens: int) -> None:
        """A count the gateway estimated itself: no output, no cost, never a completion."""
        usage = Usage()
        usage.input_tokens = tokens
        latency = self._clock() - flow.started
        self._add(_finished(flow, _route(flow), "openai", 200, usage, latency, self._wall(), None))

    def _add(self, item: Finished) -> None:
        if not self._enabled:
            return
        recorder = self.recorder
        if len(self._pending) + recorder.handed - recorder.written >= recorder.limit:
            recorder.dropped += 1  # the writer is behind: count, never grow without bound
            ticket = item.ticket
            if ticket is not None and self.settle is not None:  # the estimate stands
                _off_the_loop(self.settle, [(ticket, ticket.reserved)])
            return
        pending = self._pending
        if not pending and self._wake is not None:
            self._wake.set()
        pending.append(item)

    async def run(self) -> None:
        """Flush a batch `every` seconds after its first record (the app runs this as a task);
        with nothing to record it sleeps until a record comes."""
        every = self.every
        wake = self._wake = asyncio.Event()
        if self._pending:
            wake.set()
        while True:
            await wake.wait()
            await asyncio.sleep(every)
            wake.clear()  # the next record after this flush wakes it again
            self.flush()

    def flush(self) -> None:
        """Hand everything pending to the recorder's thread, which records and logs it."""
        batch, self._pending = self._pending, []
        if batch:
            self.recorder.submit(partial(_records, batch, self._log_json, self.settle), len(batch))

    def close(self) -> None:
        """Flush; stop the recorder too when this app created it."""
        self.flush()
        if self._owned:
            self.recorder.close()
        else:
            self.recorder.flush()


def open_recorder(
    home: Path, *, persist: bool = True, retention_days: float | None = None
) -> Recorder:
    """The usage database in DRIFTGATE_HOME; in memory (with a warning) when it cannot be opened."""
    path = usage_db_path(home)
    try:
        return Recorder(path, persist=persist, retention_days=retention_days)
    except (OSError, sqlite3.Error) as exc:
        logging.getLogger("driftgate.app").warning(
            "usage is not being saved: cannot open %s (%s)", path, exc
        )
        return Recorder(None, retention_days=retention_days)


def _off_the_loop(settle: Settle, settled: list[tuple[Any, float | None]]) -> None:
    """`settle(settled)` in a worker thread when called on the loop (a shared store may wait)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        settle(settled)
        return
    loop.run_in_executor(None, settle, settled)


def _records(
    batch: list[Finished],
    log_json: bool = False,
    settle: Settle | None = None,
) -> list[RequestRecord]:
    """The batch's records and its log lines (run on the recorder's thread, never the loop)."""
    rows: list[RequestRecord] = []
    reasons: list[str | None] = []
    tables: dict[tuple[str, str, int], Prices | None] = {}  # one price lookup per model a batch
    settled: list[tuple[Any, float | None]] = []
    for item in batch:
        ticket = item.ticket
        try:
            rows.append(_row(item, tables))
            reasons.append(item.reason)
        except Exception:
            log.exception("could not record usage for a %s request", item.endpoint)
            if ticket is not None:
                settled.append((ticket, ticket.reserved))  # cost unknown: the estimate stands
            continue
        if ticket is not None:
            settled.append((ticket, rows[-1].cost_usd))
    if settled and settle is not None:
        try:  # one store call (one transaction) for the batch's settlements
            settle(settled)
        except Exception:  # the records are still written and logged
            log.exception("spend guard: could not settle %d requests", len(settled))
    _log_lines(rows, reasons, log_json)
    return rows


def _log_lines(rows: list[RequestRecord], reasons: list[str | None], log_json: bool) -> None:
    """One log line per request, stamped when it finished (not when the batch was written)."""
    handler = None if log_json else direct_handler(log)
    if handler is not None:  # the default stderr text log: lines straight to its handler
        info, warning = log.isEnabledFor(logging.INFO), log.isEnabledFor(logging.WARNING)
        lines = []
        for rec, reason in zip(rows, reasons, strict=True):
            # _level, inline: a call per line cost as much as the test
            if rec.status >= 500 and rec.outcome is None:
                if warning:
                    lines.append((rec.ts, logging.WARNING, _line(rec, reason)))
            elif info:
                lines.append((rec.ts, logging.INFO, _line(rec, reason)))
        if lines:
            handler.write_lines(log.name, lines)
        return
    logged = False
    made: logging.LogRecord | None = None
    for rec, reason in zip(rows, reasons, strict=True):  # a record each, built only if shown
        level = _level(rec)
        if log.isEnabledFor(level):
            if made is None:
                made = log.makeRecord(log.name, level, __file__, 0, "%s", (), None)
            record = _request_record(made, level, _line(rec, reason), rec.ts)
            if log_json:
                record.request = _fields(rec, reason)  # the JSON formatter writes these fields
            log.handle(record)
            logged = True
    if logged:
        end_batch(log)


def _level(rec: RequestRecord) -> int:
    """WARNING when the gateway or upstream failed the request, else INFO (a refusal is the guard
    doing its job: it warned once when it halted)."""
    return logging.WARNING if rec.status >= 500 and rec.outcome is None else logging.INFO


def _request_record(made: logging.LogRecord, level: int, line: str, ts: float) -> logging.LogRecord:
    """A request's log record: a copy of one the logger made on this thread for this batch, with
    its own level, line and time.

    Making each with makeRecord cost about a third of a request line (LogRecord.__init__ reads
    the thread, the process and the source file's name every time); they are the same for all.
    """
    record = made.__class__.__new__(made.__class__)
    fields = record.__dict__
    fields.update(made.__dict__)
    fields["levelno"] = level
    fields["levelname"] = logging.getLevelName(level)
    fields["args"] = (line,)
    fields["created"] = ts
    fields["msecs"] = (ts - int(ts)) * 1000.0
    fields[BATCHED] = True  # written with the batch's other lines, at end_batch
    return record


def _line(rec: RequestRecord, reason: str | None) -> str:
    return (
        f"{rec.endpoint} {rec.model_requested} -> {rec.backend} "
        f"({rec.model}) {rec.status} {rec.latency_ms:.0f} ms" + (f" ({reason})" if reason else "")
    )


def _fields(rec: RequestRecord, reason: str | None) -> dict[str, Any]:
    """What a JSON log line says about a request (metadata only)."""
    return {
        "request_id": rec.request_id,
        "endpoint": rec.endpoint,
        "model_requested": rec.model_requested,
        "backend": rec.backend,
        "model": rec.model,
        "status": rec.status,
        "latency_ms": round(rec.latency_ms, 1),
        "input_tokens": rec.input_tokens,
        "output_tokens": rec.output_tokens,
        "cost_usd": rec.cost_usd,
        "client": rec.client,
        "session": rec.session,
        **({"reason": reason} if reason else {}),
        **({"outcome": rec.outcome} if rec.outcome else {}),
    }


def _usage(item: Finished) -> Any:
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


def _row(item: Finished, tables: dict[tuple[str, str, int], Prices | None]) -> RequestRecord:
    """The record of one finished request."""
    (
        endpoint, client_dialect, model_requested, stream, _, session, user_agent, is_count, _,
        route, upstream, status, _, usage, ttfb, latency, ts, templates, headers, reason, outcome,
    ) = item  # fmt: skip
    if usage is None:
        usage = _usage(item)
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
    record: RequestRecord = _make(
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
