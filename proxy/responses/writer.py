"""The thread that writes one process's stored Responses turns to the SQLite file, off the event
loop: what the loop queues (turns filed, turns evicted), written in order, a batch per commit."""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from driftgate.proxy.responses.settings import ResponsesSettings
from driftgate.proxy.responses.sqlite_file import (
    Watermark,
    delete,
    evict_over,
    open_db,
    prune,
    write,
)
from driftgate.proxy.responses.turns import Turn

PRUNE_EVERY = 100  # expired turns are looked for every this many filings
BATCH = 256  # filings written in one transaction when they queue up (one commit for all)
GATHER_SECONDS = 0.05  # in one process, how long the writer lets filings gather before a commit
GATHER_STEPS = 10  # the pause is taken in steps; it ends early once a batch's worth is waiting
MAX_QUEUED = 10_000  # jobs waiting for the thread; past it a change stays in memory only
_log = logging.getLogger("driftgate.responses")


@dataclass(slots=True)
class Evict:
    """Writer job (one process): these turns are gone, and the items they brought."""

    ids: list[str]


@dataclass(slots=True)
class Put:
    """Writer job: one turn and the ids of its named items (then what its filing evicted, if
    anything); `done` is set once they are committed."""

    response_id: str
    turn: Turn
    blob: bytes
    named: list[str]
    done: concurrent.futures.Future[None] | None = None
    evicted: list[str] | None = None  # the ids of the turns this filing pushed out


class _Stop:
    """Writer job: write what is queued before it, then end."""


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
        self._shared = watermark is not None  # with workers the file maps items to their turns
        # Seconds a batch may wait for more filings (one commit for all): only when nobody waits
        # for a filing (one process; with workers a request waits until the file holds its turn).
        self._gather = gather
        self._sleep = sleep
        # The loop appends, the thread pops (a deque's append and popleft are atomic); the event
        # wakes the thread when it sleeps, so a job costs the loop no lock while it is awake.
        self._jobs: collections.deque[Put | Evict | _Stop] = collections.deque()
        self._wake = threading.Event()
        # Filings queued (counted by the loop) and written or failed (by the thread, after the
        # commit): the difference is how many of the latest filings the file does not hold yet.
        self.queued = 0
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="driftgate-responses", daemon=True)

    def start(self) -> None:
        """Start the thread (after the jobs known at start-up are queued)."""
        self._thread.start()

    def put(self, job: Put | Evict) -> bool:
        """Queue `job`; False when the queue is full (the change stays in memory only)."""
        if len(self._jobs) >= MAX_QUEUED:
            _log.warning("stored responses: write queue full, a change was kept in memory only")
            return False
        self._jobs.append(job)
        if type(job) is Put:
            self.queued += 1
        if not self._wake.is_set():
            self._wake.set()
        return True

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        self._jobs.append(_Stop())
        self._wake.set()
        self._thread.join()

    def _next(self) -> Put | Evict | _Stop:
        """The oldest job, waiting for one when none is queued."""
        while True:
            try:
                return self._jobs.popleft()
            except IndexError:
                pass
            self._wake.clear()
            if not self._jobs:  # a job queued before the clear is seen here; after it, wakes us
                self._wake.wait()

    def _run(self) -> None:
        try:
            conn = open_db(self._path, shared=self._shared)
        except (OSError, sqlite3.Error) as exc:
            _log.warning(
                "stored responses are kept in memory only: cannot open %s (%s)", self._path, exc
            )
            self._fail_all(exc)
            return
        ttl = self._settings.store_ttl_seconds
        written = 0
        try:
            prune(conn, self._clock() - ttl, self._shared)
            if self._watermark is not None:
                self._in_transaction(conn, None)  # a restart with smaller bounds
        except sqlite3.Error as exc:
            _log.warning("stored responses: could not prune (%s)", type(exc).__name__)
        stop = False
        while not stop:
            jobs, stop = self._take()
            if not jobs:
                continue
            # A filing is counted written before its waiter hears so: the loop, woken by the
            # answer, lets turns leave memory by that count.
            puts = sum(isinstance(job, Put) for job in jobs)
            try:  # the usual case: every job of the batch in one transaction (one commit)
                self._in_transaction(conn, jobs)
            except Exception:
                for job in jobs:  # one job's failure must not lose the others: alone, each
                    outcome: Exception | None = None
                    try:
                        self._in_transaction(conn, [job])
                    except Exception as exc:  # the thread must outlive any one write
                        _log.warning("could not store a response: %s", type(exc).__name__)
                        outcome = exc
                    if isinstance(job, Put):
                        self.written += 1
                        _answer(job.done, outcome)
            else:
                self.written += puts
                for job in jobs:
                    if isinstance(job, Put) and job.done is not None:
                        _answer(job.done, None)
            # One process: the loop finds the expired turns and queues them as evictions.
            if self._shared and (written + puts) // PRUNE_EVERY > written // PRUNE_EVERY:
                try:
                    prune(conn, self._clock() - ttl, self._shared)
                except sqlite3.Error as exc:
                    _log.warning("stored responses: could not prune (%s)", type(exc).__name__)
            written += puts
        conn.close()

    def _take(self) -> tuple[list[Put | Evict], bool]:
        """The next job and those queued behind it (up to BATCH; with `gather`, those queued
        within that time too); True when a stop came."""
        jobs: list[Put | Evict] = []
        job = self._next()
        if self._gather > 0 and not isinstance(job, _Stop) and getattr(job, "done", None) is None:
            # Let the filings of the next moments join this commit, but never more than a batch:
            # memory keeps the latest turns only, and one that left it must be in the file.
            for _ in range(GATHER_STEPS):
                if len(self._jobs) >= BATCH - 1:
                    break
                self._sleep(self._gather / GATHER_STEPS)
        while not isinstance(job, _Stop):
            jobs.append(job)
            if len(jobs) >= BATCH:
                return jobs, False
            try:
                job = self._jobs.popleft()
            except IndexError:
                return jobs, False
        return jobs, True

    def _in_transaction(self, conn: sqlite3.Connection, jobs: list[Put | Evict] | None) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if jobs:
                _write_jobs(conn, jobs, self._shared)
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
            job = self._next()
            if isinstance(job, _Stop):
                return
            if isinstance(job, Put):
                self.written += 1
                _answer(job.done, exc)


def _write_jobs(conn: sqlite3.Connection, jobs: list[Put | Evict], shared: bool) -> None:
    """A batch's filings and evictions with one statement of each kind where order allows: the
    turns (and with workers, `shared`, their item rows) first, then the evicted turns (as if
    each had gone in queue order: a turn filed again after its eviction stays). Rows go into
    flat lists of values, as the statements bind them."""
    turns: list[Any] = []  # id, previous, created, items, named: a turn after another
    firsts: list[Any] = []  # id, created, items, named
    items: list[str] = []  # item id, turn id
    gone: list[str] = []
    evicted: set[str] = set()
    dumps = orjson.dumps
    for job in jobs:
        if isinstance(job, Put):
            response_id = job.response_id
            if response_id in evicted:  # filed again after its eviction: the evictions go first
                write(conn, turns, firsts, items)
                delete(conn, gone)
                turns, firsts, items, gone, evicted = [], [], [], [], set()
            turn, named = job.turn, job.named
            names = dumps(named).decode() if named else "[]"
            if turn.previous is None:
                firsts += (response_id, turn.created, bytearray(job.blob), names)
            else:
                turns += (response_id, turn.previous, turn.created, bytearray(job.blob), names)
            if shared:
                for item_id in named:
                    items += (item_id, response_id)
            gone_ids = job.evicted
        else:
            gone_ids = job.ids
        if gone_ids:
            gone += gone_ids
            evicted.update(gone_ids)
    write(conn, turns, firsts, items)
    if gone:
        delete(conn, gone)


def _answer(done: concurrent.futures.Future[None] | None, exc: BaseException | None) -> None:
    """Tell whoever waits for a filing how it went (nobody, if their request was cancelled)."""
    if done is None or not done.set_running_or_notify_cancel():
        return
    if exc is None:
        done.set_result(None)
    else:
        done.set_exception(exc)
