"""The stored conversations' SQLite file (DRIFTGATE_HOME/responses.sqlite3): its schema, one
writer thread per process, and the bounds kept across every process that writes it.

With --workers N each worker writes the same file. Totals of the turns table (count, bytes) are
kept by triggers, so a writer sees every worker's turns in one row and evicts the oldest, whoever
filed them, in the transaction that went past a bound. Which turns are gone is published in a
watermark file (every turn created before it was deleted) that workers read before trusting the
turns they hold in memory.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import mmap
import os
import queue
import sqlite3
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from driftgate.proxy.responses.settings import ResponsesSettings
from driftgate.proxy.responses.turns import Turn

PRUNE_EVERY = 100  # expired rows are deleted from SQLite every this many writes
BATCH = 256  # filings written in one transaction when they queue up (one commit for all)
GATHER_SECONDS = 0.05  # in one process, how long the writer lets filings gather before a commit
GATHER_STEPS = 10  # the pause is taken in steps; it ends early once a batch's worth is waiting
_log = logging.getLogger("driftgate.responses")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS turns ("
    " id TEXT PRIMARY KEY, previous TEXT, created REAL NOT NULL, items BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS turns_created ON turns (created)",
    "CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY, created REAL NOT NULL, item BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS items_created ON items (created)",
    "CREATE TABLE IF NOT EXISTS totals ("
    " one INTEGER PRIMARY KEY CHECK (one = 1), turns INTEGER NOT NULL, bytes INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO totals SELECT 1, count(*), coalesce(sum(length(items)), 0) FROM turns",
    "CREATE TRIGGER IF NOT EXISTS turns_added AFTER INSERT ON turns BEGIN"
    " UPDATE totals SET turns = turns + 1, bytes = bytes + length(NEW.items); END",
    "CREATE TRIGGER IF NOT EXISTS turns_changed AFTER UPDATE OF items ON turns BEGIN"
    " UPDATE totals SET bytes = bytes + length(NEW.items) - length(OLD.items); END",
    "CREATE TRIGGER IF NOT EXISTS turns_gone AFTER DELETE ON turns BEGIN"
    " UPDATE totals SET turns = turns - 1, bytes = bytes - length(OLD.items); END",
)
_UPSERT = (
    "INSERT INTO turns VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
    " previous = excluded.previous, created = excluded.created, items = excluded.items"
)


@dataclass(slots=True)
class Put:
    """Writer job: one turn and its named items; `done` is set once they are committed."""

    response_id: str
    turn: Turn
    blob: bytes
    named: list[dict[str, Any]]
    done: concurrent.futures.Future[None] | None = None


@dataclass(slots=True)
class Evict:
    """Writer job: these turns are gone, and every item older than the oldest turn kept."""

    ids: list[str]
    items_before: float


@dataclass(slots=True)
class _Stop:
    jobs: list[Put | Evict] = field(default_factory=list)


class Watermark:
    """A shared float in a small file: every turn created before it was evicted by some worker."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < 8:
                os.pwrite(fd, b"\0" * 8, 0)
            self._map = mmap.mmap(fd, 8)
        finally:
            os.close(fd)

    def get(self) -> float:
        """The current watermark (0.0: nothing evicted yet)."""
        return float(struct.unpack_from("d", self._map)[0])

    def raise_to(self, value: float) -> None:
        """Move it up (writers call this inside their write transaction: one at a time)."""
        if value > self.get():
            struct.pack_into("d", self._map, 0, value)

    def close(self) -> None:
        """Unmap the file."""
        self._map.close()


OPEN_SECONDS = 10.0  # most a writer retries opening a file other workers are setting up


def open_db(path: Path) -> sqlite3.Connection:
    """The file, made private if new, in WAL mode, with the schema (safe from several workers).

    Workers starting together open a new file at once: switching it to WAL can answer "database
    is locked" at once, without the busy timeout's wait, so the open is tried again for a while
    (on the writer's thread, never the event loop)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # conversation content: private
    deadline = time.monotonic() + OPEN_SECONDS
    while True:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            _set_up(conn)
        except sqlite3.OperationalError as exc:
            conn.close()
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
            continue
        except BaseException:
            conn.close()
            raise
        return conn


def _set_up(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("BEGIN IMMEDIATE")  # workers opening a new file together take turns
    try:
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def write(conn: sqlite3.Connection, job: Put) -> None:
    """File one turn and its named items (inside the caller's transaction)."""
    conn.execute(_UPSERT, (job.response_id, job.turn.previous, job.turn.created, job.blob))
    conn.executemany(
        "INSERT OR REPLACE INTO items VALUES (?, ?, ?)",
        [(i["id"], job.turn.created, orjson.dumps(i)) for i in job.named],
    )


def prune(conn: sqlite3.Connection, before: float) -> None:
    """Delete what was stored before `before` (outlived the TTL)."""
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("DELETE FROM turns WHERE created < ?", (before,))
    conn.execute("DELETE FROM items WHERE created < ?", (before,))
    conn.execute("COMMIT")


def evict_over(conn: sqlite3.Connection, settings: ResponsesSettings) -> float | None:
    """Past store_max_items or store_max_bytes counting every worker's turns: delete the oldest
    (and the items older than the oldest kept); the new watermark, or None when within bounds."""
    count, size = conn.execute("SELECT turns, bytes FROM totals").fetchone()
    if count <= settings.store_max_items and size <= settings.store_max_bytes:
        return None
    gone: list[tuple[str]] = []
    last = 0.0
    kept: float | None = None
    for response_id, length, created in conn.execute(
        "SELECT id, length(items), created FROM turns ORDER BY created"
    ):
        if count <= settings.store_max_items and size <= settings.store_max_bytes:
            kept = created
            break
        gone.append((response_id,))
        count, size, last = count - 1, size - length, created
    conn.executemany("DELETE FROM turns WHERE id = ?", gone)
    # An item is as old as the turn that brought it: those older than every kept turn go too.
    conn.execute("DELETE FROM items WHERE created < ?", (kept if kept is not None else math.inf,))
    return math.nextafter(last, math.inf)


class Writer:
    """One thread that writes this process's turns to the file, in order, off the event loop."""

    def __init__(
        self,
        path: Path,
        settings: ResponsesSettings,
        clock: Callable[[], float] = time.time,
        watermark: Watermark | None = None,
        gather: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._path = path
        self._settings = settings
        self._clock = clock
        self._watermark = watermark  # set with workers: bounds kept across them, published here
        # Seconds a batch may wait for more filings (one commit for all): only when nobody waits
        # for a filing (one process; with workers a request waits until the file holds its turn).
        self._gather = gather
        self._sleep = sleep
        self._queue: queue.Queue[Put | Evict | _Stop] = queue.Queue(maxsize=10_000)
        self._thread = threading.Thread(target=self._run, name="driftgate-responses", daemon=True)

    def start(self) -> None:
        """Start the thread (after the jobs known at start-up are queued)."""
        self._thread.start()

    def put(self, job: Put | Evict) -> bool:
        """Queue `job`; False when the queue is full (the change stays in memory only)."""
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            _log.warning("stored responses: write queue full, a change was kept in memory only")
            return False
        return True

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        self._queue.put(_Stop())
        self._thread.join()

    def _run(self) -> None:
        try:
            conn = open_db(self._path)
        except (OSError, sqlite3.Error) as exc:
            _log.warning(
                "stored responses are kept in memory only: cannot open %s (%s)", self._path, exc
            )
            self._fail_all(exc)
            return
        ttl = self._settings.store_ttl_seconds
        written = 0
        try:
            prune(conn, self._clock() - ttl)
            if self._watermark is not None:
                self._in_transaction(conn, None)  # a restart with smaller bounds
        except sqlite3.Error as exc:
            _log.warning("stored responses: could not prune (%s)", type(exc).__name__)
        stop = False
        while not stop:
            jobs, stop = self._take()
            if not jobs:
                continue
            try:  # the usual case: every job of the batch in one transaction (one commit)
                self._in_transaction(conn, jobs)
            except Exception:
                for job in jobs:  # one job's failure must not lose the others: alone, each
                    try:
                        self._in_transaction(conn, [job])
                    except Exception as exc:  # the thread must outlive any one write
                        _log.warning("could not store a response: %s", type(exc).__name__)
                        if isinstance(job, Put):
                            _answer(job.done, exc)
                    else:
                        if isinstance(job, Put):
                            _answer(job.done, None)
            else:
                for job in jobs:
                    if isinstance(job, Put):
                        _answer(job.done, None)
            puts = sum(isinstance(job, Put) for job in jobs)
            if (written + puts) // PRUNE_EVERY > written // PRUNE_EVERY:
                try:
                    prune(conn, self._clock() - ttl)
                except sqlite3.Error as exc:
                    _log.warning("stored responses: could not prune (%s)", type(exc).__name__)
            written += puts
        conn.close()

    def _take(self) -> tuple[list[Put | Evict], bool]:
        """The next job and those queued behind it (up to BATCH; with `gather`, those queued
        within that time too); True when a stop came."""
        jobs: list[Put | Evict] = []
        job = self._queue.get()
        if self._gather > 0 and not isinstance(job, _Stop) and getattr(job, "done", None) is None:
            # Let the filings of the next moments join this commit, but never more than a batch:
            # memory keeps the latest turns only, and one that left it must be in the file.
            for _ in range(GATHER_STEPS):
                if self._queue.qsize() >= BATCH - 1:
                    break
                self._sleep(self._gather / GATHER_STEPS)
        while not isinstance(job, _Stop):
            jobs.append(job)
            if len(jobs) >= BATCH:
                return jobs, False
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return jobs, False
        return jobs, True

    def _in_transaction(self, conn: sqlite3.Connection, jobs: list[Put | Evict] | None) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for job in jobs or ():
                if isinstance(job, Put):
                    write(conn, job)
                else:
                    conn.executemany("DELETE FROM turns WHERE id = ?", [(i,) for i in job.ids])
                    conn.execute("DELETE FROM items WHERE created < ?", (job.items_before,))
            if self._watermark is not None:
                evicted = evict_over(conn, self._settings)
                if evicted is not None:
                    self._watermark.raise_to(evicted)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _fail_all(self, exc: BaseException) -> None:
        """The file cannot be opened: answer every filing that waits, now and later."""
        while True:
            job = self._queue.get()
            if isinstance(job, _Stop):
                return
            if isinstance(job, Put):
                _answer(job.done, exc)


def _answer(done: concurrent.futures.Future[None] | None, exc: BaseException | None) -> None:
    """Tell whoever waits for a filing how it went (nobody, if their request was cancelled)."""
    if done is None or not done.set_running_or_notify_cancel():
        return
    if exc is None:
        done.set_result(None)
    else:
        done.set_exception(exc)


def read_turn(conn: sqlite3.Connection, response_id: str) -> Turn | None:
    """One stored turn from the file, or None."""
    row = conn.execute(
        "SELECT previous, created, items FROM turns WHERE id = ?", (response_id,)
    ).fetchone()
    return None if row is None else Turn(row[0], row[1], orjson.loads(row[2]))


def read_item(conn: sqlite3.Connection, item_id: str) -> tuple[float, dict[str, Any]] | None:
    """One stored item (when it was stored, the item) from the file, or None."""
    row = conn.execute("SELECT created, item FROM items WHERE id = ?", (item_id,)).fetchone()
    return None if row is None else (row[0], orjson.loads(row[1]))
