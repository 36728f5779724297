"""One writer per process: records to PostgreSQL by COPY, aggregates upserted, partitions kept.

`consume` is a record sink: it runs on the recorder's thread, turns a batch into COPY rows and
per-minute deltas, and appends them to a bounded buffer; it never waits on the database. The
writer is an asyncio task on its own thread and loop (psycopg's async connection, so backoff,
timeouts and shutdown are plain awaits and the gateway's loop never encodes a row). While the
database is down, batches wait in the buffer up to `limit` records; past that they are dropped
and counted, and the writer reconnects with backoff. Requests never wait for any of it.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

from driftgate.proxy.observe.pg import minutes, schema
from driftgate.proxy.observe.pg.connect import (
    TIMEOUT,
    DatabaseHung,
    DatabaseRefused,
    bounded,
    connect,
)
from driftgate.proxy.observe.pg.reader import usage_rows, window_summary
from driftgate.proxy.observe.pg.url import reason, redact_url
from driftgate.proxy.observe.records import COLUMNS, RequestRecord
from driftgate.proxy.observe.summary import Summary

T = TypeVar("T")
QUEUE_LIMIT = 100_000  # records waiting for the database; beyond this they are dropped and counted
BACKOFF_FIRST, BACKOFF_MAX = 0.2, 2.0  # seconds between reconnection attempts, doubling
# A transaction costs the gateway's process ~2.5 ms of CPU whatever its size (bench/README.md):
# batches are gathered for WRITE_EVERY seconds (or until WRITE_NOW records wait) before one is
# written, so the cost per record stays small at any request rate.
WRITE_EVERY = 1.0
WRITE_NOW = 5000
MAINTAIN_EVERY = 3600.0  # partitions ahead and retention, once an hour per gateway
CLOSE_WAIT = 5.0  # seconds a shutdown waits for the buffer to reach the database
_COPY = f"COPY driftgate_requests ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_SET = ", ".join(
    [f"{c} = driftgate_minutes.{c} + EXCLUDED.{c}" for c in minutes.SUMS]
    + [f"{c} = driftgate_hist_add(driftgate_minutes.{c}, EXCLUDED.{c})" for c in minutes.HISTS]
)
_UPSERT = (
    f"INSERT INTO driftgate_minutes ({', '.join(minutes.COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(minutes.COLUMNS))}) "
    f"ON CONFLICT ({', '.join(minutes.KEY)}) DO UPDATE SET {_SET}"
)
_UPSERT_REFUSALS = (
    f"INSERT INTO driftgate_refusals ({', '.join(minutes.REFUSAL_KEY)}, requests) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT ("
    f"{', '.join(minutes.REFUSAL_KEY)}) DO UPDATE SET requests = "
    "driftgate_refusals.requests + EXCLUDED.requests"
)
_TS = COLUMNS.index("ts")
_log = logging.getLogger("driftgate.analytics")


@dataclass
class _Batch:
    rows: list[tuple[Any, ...]]  # COPY rows (RequestRecord with ts as a datetime)
    minutes: list[tuple[Any, ...]]  # per-minute deltas
    days: set[dt.date]
    refusals: list[tuple[Any, ...]]  # per-minute counts of refused requests, per reason


class PgAnalytics:
    """Records to PostgreSQL through one connection; reads of the aggregates through another."""

    def __init__(
        self,
        url: str,
        *,
        retention_days: float | None = None,
        limit: int = QUEUE_LIMIT,
        clock: Callable[[], float] = time.time,
        close_wait: float = CLOSE_WAIT,
        write_every: float = WRITE_EVERY,
        timeout: float = TIMEOUT,
    ) -> None:
        self.url = url
        self.shown = redact_url(url)
        self.limit = limit
        self.dropped = 0  # records not written: the buffer was full, or a batch was refused
        self.written = 0
        self.connected = False
        self.last_error: str | None = None
        self.applied: list[int] = []  # migrations this process applied
        self._retention = retention_days * 86400.0 if retention_days else None
        self._clock = clock
        self._close_wait = close_wait
        self._write_every = write_every
        self._timeout = timeout  # to connect, and for each statement or transaction
        self._last_write = 0.0  # time.monotonic() of the last transaction
        self._lock = threading.Lock()
        self._pending: collections.deque[_Batch] = collections.deque()
        self._buffered = 0  # records in _pending (the ones being written included)
        self._writing = 0  # records in the transaction under way (the oldest in _pending)
        self._napping = False  # the writer sleeps until a set time: new batches need not wake it
        self._days: set[dt.date] = set()  # partitions known to exist
        self._next_maintain = 0.0
        self._loop = asyncio.new_event_loop()
        self._wake = asyncio.Event()
        self._stopping = False
        self._first: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._serve, name="driftgate-pg", daemon=True)
        self._reader: Any = None

    # --- on any thread ---------------------------------------------------------------------

    @property
    def backlog(self) -> int:
        """Records waiting for the database."""
        return self._buffered

    def start(self, wait: float | None = None) -> None:
        """Start the writer and wait up to `wait` s for its first connection (migrations done).

        By default it waits as long as connecting and migrating may take (twice the timeout).

        Raises DatabaseRefused or schema.SchemaTooNew (a config mistake); an unreachable database
        is only logged: records are buffered until it answers.
        """
        self._thread.start()
        try:
            self._first.result(timeout=2 * self._timeout + 1.0 if wait is None else wait)
        except (DatabaseRefused, schema.SchemaTooNew):
            self.close()
            raise
        except (concurrent.futures.TimeoutError, psycopg.Error, OSError):
            pass  # the writer logged it, and goes on trying: records wait in the buffer

    def consume(self, records: Sequence[RequestRecord]) -> None:
        """A record sink (the recorder's thread): queue the batch; O(batch), never waits."""
        with self._lock:
            if self._stopping or self._buffered + len(records) > self.limit:
                self.dropped += len(records)
                return
            self._buffered += len(records)
        batch = _batch(records)
        with self._lock:
            self._pending.append(batch)
            # A writer sleeping on purpose (gathering a second's records, or backing off) is not
            # woken for each batch: that was a thread wake-up every 50 ms for nothing.
            wake = not self._napping or self._buffered >= WRITE_NOW
        if wake:
            self._loop.call_soon_threadsafe(self._wake.set)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the buffer is empty (written or dropped); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._buffered and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._buffered

    def close(self) -> None:
        """Write what is buffered (up to CLOSE_WAIT s), then stop; what is left is counted."""
        if not self._thread.is_alive():
            return
        with self._lock:
            self._stopping = True
        self._loop.call_soon_threadsafe(self._wake.set)
        self._thread.join(self._close_wait + 2 * self._timeout + 5)

    def call(self, read: Callable[[Any], Awaitable[T]]) -> concurrent.futures.Future[T]:
        """Run `read(reader connection)` on the writer's loop (await it with asyncio.wrap_future)."""
        return asyncio.run_coroutine_threadsafe(self._read(read), self._loop)

    async def summary(self, since: float, until: float) -> Summary:
        """The window's summary from the aggregates (from any event loop)."""
        return await asyncio.wrap_future(self.call(lambda c: window_summary(c, since, until)))

    async def usage(self, since: float | None) -> list[dict[str, Any]]:
        """Per backend and model totals from the aggregates (from any event loop)."""
        return await asyncio.wrap_future(self.call(lambda c: usage_rows(c, since)))

    def state(self) -> dict[str, Any]:
        """For /health and /analytics: where, whether connected, what waits and what was lost."""
        doc: dict[str, Any] = {
            "store": "postgresql",
            "url": self.shown,
            "connected": self.connected,
            "backlog": self._buffered,
            "written": self.written,
            "dropped": self.dropped,
        }
        if self.last_error and not self.connected:
            doc["error"] = self.last_error
        return doc

    # --- on the writer's thread ------------------------------------------------------------

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._run())
        finally:
            self._loop.close()

    async def _read(self, read: Callable[[Any], Awaitable[T]]) -> T:
        kept = self._reader is not None and not self._reader.closed
        try:
            return await self._read_once(read)
        except psycopg.OperationalError as exc:
            if not kept or isinstance(exc, DatabaseHung):  # a hung server: asking again waits again
                raise
            # The kept connection died since the last read (PostgreSQL restarted): a new one.
            return await self._read_once(read)

    async def _read_once(self, read: Callable[[Any], Awaitable[T]]) -> T:
        if self._reader is None or self._reader.closed:
            conn = await connect(self.url, self._timeout)
            try:  # a read may come before the writer connects
                await bounded(conn, schema.migrate(conn), self._timeout)
            except BaseException:
                await conn.close()
                raise
            self._reader = conn
        try:
            return await bounded(self._reader, read(self._reader), self._timeout)
        except psycopg.OperationalError:
            await self._reader.close()
            self._reader = None
            raise

    async def _run(self) -> None:
        conn: Any = None
        backoff = BACKOFF_FIRST
        closing_by: float | None = None
        while True:
            if self._stopping and closing_by is None:
                closing_by = time.monotonic() + self._close_wait
            if closing_by is not None and (not self._pending or time.monotonic() > closing_by):
                break
            if conn is None:
                try:
                    conn = await self._open()
                except Exception as exc:
                    refused = isinstance(exc, DatabaseRefused | schema.SchemaTooNew)
                    if not self._first.done():
                        self._first.set_exception(exc)
                        if refused:  # start() says it as a config mistake; no warning first
                            self.last_error = reason(exc)
                            await self._sleep(BACKOFF_FIRST, closing_by)
                            continue
                    self._lost(exc)
                    await self._nap(backoff, closing_by)
                    backoff = min(backoff * 2, BACKOFF_MAX)
                    continue
                backoff = BACKOFF_FIRST
                if not self._first.done():
                    self._first.set_result(None)
            if not self._pending and closing_by is None:
                self._wake.clear()
                if not self._pending and not self._stopping:
                    await self._wait(conn)
                continue
            due = self._last_write + self._write_every - time.monotonic()
            if due > 0 and closing_by is None and self._buffered < WRITE_NOW:
                await self._nap(due, None)  # gather more: one transaction for all of them
                continue
            self._last_write = time.monotonic()
            try:
                await bounded(conn, self._write_pending(conn), self._timeout)
            except Exception as exc:  # the writer must outlive any failure: lost or refused
                if isinstance(exc, DatabaseHung) or conn.closed or conn.broken:
                    await conn.close()
                    self._lost(exc)
                    conn = None
                else:
                    self._refused(exc)
        await self._finish(conn)

    async def _wait(self, conn: Any) -> None:
        """Until a batch arrives, or the hour's maintenance is due."""
        due = self._next_maintain - self._clock()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=max(due, 0.05))
        except TimeoutError:
            try:
                await bounded(conn, self._maintain(conn), self._timeout)
            except psycopg.Error as exc:
                _log.warning("analytics database maintenance failed: %s", reason(exc))
                self._next_maintain = self._clock() + 60.0

    async def _nap(self, seconds: float, closing_by: float | None) -> None:
        """`_sleep`, telling `consume` not to wake the writer early for a new batch."""
        self._napping = True
        try:
            await self._sleep(seconds, closing_by)
        finally:
            self._napping = False

    async def _sleep(self, seconds: float, closing_by: float | None) -> None:
        if closing_by is not None:
            seconds = min(seconds, max(0.0, closing_by - time.monotonic()))
        self._wake.clear()
        with contextlib.suppress(TimeoutError):  # a shutdown wakes the writer early
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _open(self) -> Any:
        conn = await connect(self.url, self._timeout)
        try:
            self.applied += await bounded(conn, schema.migrate(conn), self._timeout)
            self._days = set()
            await bounded(conn, self._maintain(conn), self._timeout)
        except BaseException:
            await conn.close()
            raise
        if not self.connected and self.last_error is not None:
            _log.info("analytics database %s answers again", self.shown)
        self.connected = True
        return conn

    async def _maintain(self, conn: Any) -> None:
        now = self._clock()
        ahead = schema.days_ahead(now)
        await schema.ensure_partitions(conn, ahead - self._days)
        self._days |= ahead
        if self._retention is not None:
            dropped = await schema.drop_older(conn, now - self._retention)
            if dropped:
                self._days -= {d for d in self._days if d < schema.day_of(now - self._retention)}
                _log.info("analytics retention: dropped partitions %s", ", ".join(dropped))
        self._next_maintain = now + MAINTAIN_EVERY

    async def _write_pending(self, conn: Any) -> None:
        """One transaction for the oldest batches, up to WRITE_NOW records (at least one batch).

        Capped so that a transaction after an outage (up to `limit` records waiting) takes about
        as long as any other and stays well within the timeout.
        """
        with self._lock:
            batches: list[_Batch] = []
            count = 0
            for b in self._pending:
                if batches and count + len(b.rows) > WRITE_NOW:
                    break
                batches.append(b)
                count += len(b.rows)
        self._writing = count
        days = set().union(*(b.days for b in batches)) - self._days
        if days:
            await schema.ensure_partitions(conn, days)
            self._days |= days
        deltas = minutes.merge([row for b in batches for row in b.minutes])
        async with conn.transaction():
            cur = conn.cursor()
            async with cur.copy(_COPY) as copy:
                copy.set_types(schema.REQUEST_TYPES)
                for b in batches:
                    for row in b.rows:
                        await copy.write_row(row)
            await cur.executemany(_UPSERT, deltas)
            refused = minutes.merge_refusals([row for b in batches for row in b.refusals])
            if refused:
                await cur.executemany(_UPSERT_REFUSALS, refused)
        self._done(len(batches), count)
        self.written += count

    def _done(self, batches: int, count: int) -> None:
        """The oldest `batches` (`count` records) left the buffer: written, or refused."""
        with self._lock:
            for _ in range(batches):
                self._pending.popleft()
            self._buffered -= count
        self._writing = 0

    def _lost(self, exc: BaseException) -> None:
        why = reason(exc)
        if self.connected or self.last_error is None:
            _log.warning(
                "analytics database %s unreachable (%s); buffering records (up to %d) and "
                "reconnecting",
                self.shown,
                why,
                self.limit,
            )
        self.connected = False
        self.last_error = why

    def _refused(self, exc: Exception) -> None:
        """The database refused a transaction itself (not the connection): drop it, count it."""
        with self._lock:
            batches, lost = 0, 0
            for b in self._pending:  # the batches that transaction held, oldest first
                if lost >= self._writing:
                    break
                batches += 1
                lost += len(b.rows)
        self._done(batches, lost)
        self.dropped += lost
        _log.warning("analytics: %d records refused by the database: %s", lost, reason(exc))

    async def _finish(self, conn: Any) -> None:
        with self._lock:
            left = self._buffered
            self._pending.clear()
            self._buffered = 0
        if left:
            self.dropped += left
            _log.warning("analytics: %d records not written to %s at shutdown", left, self.shown)
        for c in (conn, self._reader):
            if c is not None and not c.closed:
                await c.close()
        self.connected = False


def _batch(records: Sequence[RequestRecord]) -> _Batch:
    rows: list[tuple[Any, ...]] = []
    days: set[dt.date] = set()
    utc = dt.UTC
    for r in records:
        when = dt.datetime.fromtimestamp(r.ts, utc)
        days.add(when.date())
        rows.append((when, *r[_TS + 1 :]))
    return _Batch(rows, minutes.aggregate(records), days, minutes.refusals(records))
