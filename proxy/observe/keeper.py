"""After each response: one analytics record and one log line, batched off the request path.

The loop only appends a small tuple per request (`Finished`); FLUSH_EVERY seconds after the first
of a batch, the batch goes to the recorder's thread, which builds the `RequestRecord`s
(record_rows.py), writes the log lines (request_lines.py) and feeds the sinks.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from driftgate.proxy.errors import Dialect
from driftgate.proxy.flow import Flow
from driftgate.proxy.observe.pricing import Prices
from driftgate.proxy.observe.record_rows import CLIENT_GONE, Finished, make, row_of
from driftgate.proxy.observe.recorder import Recorder
from driftgate.proxy.observe.records import RequestRecord
from driftgate.proxy.observe.request_lines import log, write_lines
from driftgate.proxy.observe.usage_db import usage_db_path
from driftgate.proxy.respond.outcome import StreamResult
from driftgate.proxy.routing import Route
from driftgate.proxy.serve.drain import SHUTDOWN_REASON, SHUTDOWN_STATUS
from driftgate.proxy.sse import Usage
from driftgate.proxy.templates.loader import TemplateSet

__all__ = ["CLIENT_GONE", "FLUSH_EVERY", "Finished", "RecordKeeper", "flush_every", "log"]

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


def _route(flow: Flow) -> Route:
    """The route that answered, or was last tried (set before any upstream is asked)."""
    route = flow.route
    if route is None:
        raise ValueError("a request is recorded only once it has a route")
    return route


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
    finished: Finished = make(
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
            make(
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
            make(
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
            rows.append(row_of(item, tables))
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
    write_lines(rows, reasons, log_json)
    return rows
