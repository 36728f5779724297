"""The recorder thread: batches of records written to SQLite and handed to sinks, off the loop.

Sinks (`add_sink`) are how other parts see every record without touching the request path:
/metrics, the live stream, OTLP spans and, later, the spend guard. Each is called on the
recorder's thread with each batch, after it is written.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from driftgate.proxy.observe.records import RequestRecord, as_stored
from driftgate.proxy.observe.usage_db import open_db, prune, summarise
from driftgate.proxy.observe.usage_insert import UsageInsert

RecordSink = Callable[[Sequence[RequestRecord]], None]
Job = Callable[[], list[RequestRecord]]
T = TypeVar("T")
QUEUE_LIMIT = 100_000  # records waiting to be written; beyond this they are dropped and counted
PRUNE_EVERY = 3600.0
_BATCH = 500
_log = logging.getLogger("driftgate.analytics")


class Recorder:
    """Queue records on the request path; a daemon thread writes them and feeds the sinks.

    `persist=False` keeps no database (analytics off) but still feeds the sinks (/metrics).
    """

    def __init__(
        self,
        db_path: Path | None,
        *,
        persist: bool = True,
        retention_days: float | None = None,
        limit: int = QUEUE_LIMIT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._conn = open_db(db_path) if persist else None
        self._insert = UsageInsert()
        self.path = db_path if persist else None  # the file records are written to (None: none)
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[RequestRecord | Job | None, int]] = queue.Queue()
        self._closed = False
        self._sinks: list[RecordSink] = []
        self._clock = clock
        self._retention = retention_days * 86400.0 if retention_days else None
        self._next_prune = 0.0
        self.limit = limit
        self.dropped = 0  # records not kept because the writer was behind (or closed)
        self.written = 0  # records this recorder has processed
        self.handed = 0  # records queued so far (the loop's count; `written` is the thread's)
        self._thread = threading.Thread(target=self._run, name="driftgate-usage", daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> int:
        """Records queued and not yet written."""
        return max(0, self.handed - self.written)

    def add_sink(self, sink: RecordSink) -> None:
        """Call `sink(records)` on the recorder's thread with every batch (add before traffic)."""
        self._sinks.append(sink)

    def record(self, rec: RequestRecord) -> None:
        """Queue one record; O(1), never blocks, never raises."""
        self._put(rec, 1)

    def submit(self, job: Job, count: int = 1) -> None:
        """Queue a job that builds `count` records on the recorder's thread; O(1), never blocks.

        The job's records must already be as stored (count_tokens without output or cost).
        """
        self._put(job, count)

    def _put(self, item: RequestRecord | Job, count: int) -> None:
        if self._closed or self.handed - self.written + count > self.limit:
            self.dropped += count
            return
        self.handed += count
        self._queue.put_nowait((item, count))

    def flush(self) -> None:
        """Wait until every queued record is written."""
        if not self._closed:
            self._queue.join()

    def close(self) -> None:
        """Write what is queued, stop the thread and close the database."""
        if self._closed:
            return
        self._closed = True
        self._queue.put((None, 0))
        self._thread.join()
        with self._lock:
            if self._conn is not None:
                self._conn.close()

    def summary(self, since: float | None = None) -> list[dict[str, Any]]:
        """Per backend+model totals of what was recorded (queued records included)."""
        self.flush()
        return self.query(lambda conn: summarise(conn, since), [])

    def query(self, read: Callable[[sqlite3.Connection], T], default: T) -> T:
        """`read(connection)` under the writer's lock; `default` when nothing is kept."""
        with self._lock:
            if self._conn is None:
                return default
            return read(self._conn)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            records: list[RequestRecord] = []
            stop = False
            counted = 0
            for item, count in batch:
                counted += count
                if isinstance(item, tuple):
                    records.append(as_stored(item))
                elif item is None:
                    stop = True
                else:
                    try:
                        records.extend(item())
                    except Exception:  # a bug building records must not stop the thread
                        _log.exception("usage: could not build records")
            try:
                if records:
                    self._write(records)
                    self._feed(records)
            finally:
                self.written += counted
                for _ in batch:
                    self._queue.task_done()
            if stop:
                return

    def _write(self, rows: list[RequestRecord]) -> None:
        if self._conn is None:
            return
        try:
            with self._lock, self._conn:
                self._insert.insert(self._conn, rows)
                now = self._clock()
                if self._retention is not None and now >= self._next_prune:
                    self._next_prune = now + PRUNE_EVERY
                    prune(self._conn, now - self._retention)
        # A full disk, or a number past what SQLite keeps, must not take the gateway down.
        except (sqlite3.Error, OverflowError) as exc:
            _log.warning("usage: %d records not written: %s", len(rows), exc)

    def _feed(self, records: list[RequestRecord]) -> None:
        for sink in self._sinks:
            try:
                sink(records)
            except Exception:  # one sink's bug must not stop the others or the writer
                _log.exception("usage: a record sink failed")
