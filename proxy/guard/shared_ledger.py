"""The guard's store for several worker processes: reservations and spend in one SQLite file.

With `--workers N` every worker admits requests against the same budgets, so a reservation must
see what the other workers hold. Each reservation is a row written in a `BEGIN IMMEDIATE`
transaction (one writer at a time across processes), after the transaction has read the halt,
every other worker's reservations and the settled spend. Settled spend is read incrementally:
each process keeps running window sums (as SqliteGuardStore does) and adds only the rows written
since its last look, so a reservation costs a few indexed statements however much the day has
seen. The halt and the resume baseline live in the `state` table, read in the same transactions,
so a halt by one worker is seen by all.

Two connections: the event loop's never waits (busy timeout 0, no checkpoint on commit), so a
`try_*` call answers Busy at once when another process holds the write lock and the caller waits
somewhere else; the other one, for threads (settlements on the recorder's thread, the loop's
retries in a worker thread), waits up to BUSY_MS.

A worker that dies leaves its reservations behind: they are dropped when a worker starts and
before a budget is declared reached, when their process no longer runs.

A lease (a worker's slice of a budget, shared_state.py) is a reservation row like any other, with
an id its worker made (negative, from its pid: never one SQLite hands out); the settlements of
the requests drawn from it give back their share of it, in the transaction that adds their spend.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, TypeVar

from driftgate.proxy.guard.ledger import (
    DAY,
    HOUR,
    SCHEMA,
    TOTAL,
    Halt,
    Limit,
    Settled,
    _Window,
)
from driftgate.proxy.guard.redis_leases import ALL, LeaseAsk, add_give

RESERVED = """
CREATE TABLE IF NOT EXISTS reserved (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  pid INTEGER NOT NULL, backend TEXT NOT NULL, usd REAL NOT NULL, ts REAL NOT NULL
)
"""
BUSY_MS = 10_000  # how long a thread waits for another process's transaction (they take µs)
T = TypeVar("T")


class Busy(Exception):
    """Another process holds the file's write lock: the loop's connection does not wait for it."""


class Ask(NamedTuple):
    """One request's admission: its backend, estimated cost, budgets, time, whether a halt stops it."""

    backend: str
    usd: float
    limits: tuple[Limit, ...]
    now: float
    respect_halt: bool


class Over(NamedTuple):
    """A reservation that does not fit: the first limit it breaks and what that limit holds."""

    limit: Limit
    spent: float


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _connect(path: Path, *, waits: bool) -> sqlite3.Connection:
    db = sqlite3.connect(
        path, check_same_thread=False, isolation_level=None, timeout=BUSY_MS / 1000
    )
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # WAL: a power cut may lose, never corrupt
    if not waits:
        db.execute("PRAGMA busy_timeout=0")
        # A checkpoint writes the WAL back and fsyncs: the threads' connection does it.
        db.execute("PRAGMA wal_autocheckpoint=0")
    return db


def _busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


class SharedSqliteGuardStore:
    """A GuardStore whose reservations, spend and halt hold across processes sharing `path`."""

    def __init__(self, path: Path, pid: int | None = None) -> None:
        self.pid = os.getpid() if pid is None else pid  # lease ids are made from it too
        self._mem = threading.Lock()  # the windows, held only inside a write transaction
        self._lock = threading.Lock()  # the threads' connection, one user at a time
        self._windows: dict[tuple[str, float], _Window] = {}
        self._seen = 0  # the last spend rowid added to the windows
        self._baseline: float | None = None
        self._pruned = 0.0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = _connect(path, waits=True)
        with self._lock:
            self._db.executescript(SCHEMA + ";" + RESERVED)  # idempotent: every worker runs it
            self._write(self._db, lambda db: self._reclaim(db))
        self._quick = _connect(path, waits=False)

    # -- transactions -------------------------------------------------------
    def _write(self, db: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
        """`body(db)` in one BEGIN IMMEDIATE transaction; Busy when `db` does not wait for it."""
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _busy(exc):
                raise Busy from None
            raise
        try:
            got = body(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return got

    def _waiting(self, body: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            return self._write(self._db, body)

    # -- what the transactions do ---------------------------------------------
    def _reclaim(self, db: sqlite3.Connection) -> int:
        """Drop the reservations of processes that no longer run; how many."""
        pids = [int(p) for (p,) in db.execute("SELECT DISTINCT pid FROM reserved")]
        dead = [p for p in pids if p != self.pid and not _alive(p)]
        dropped = 0
        for pid in dead:
            dropped += db.execute("DELETE FROM reserved WHERE pid = ?", (pid,)).rowcount
        return dropped

    def _sync(self, db: sqlite3.Connection) -> dict[str, str | None]:
        """Bring the windows up to date with the file; the state table as it is now."""
        state: dict[str, str | None] = dict(db.execute("SELECT key, value FROM state").fetchall())
        baseline = float(state.get("baseline") or 0.0)
        with self._mem:
            if baseline != self._baseline:  # first look, or a resume somewhere: recount from it
                self._baseline = baseline
                self._windows.clear()
                self._seen = 0
            rows = db.execute(
                "SELECT rowid, ts, backend, usd FROM spend WHERE rowid > ? AND ts >= ? "
                "ORDER BY rowid",
                (self._seen, baseline),
            ).fetchall()
            for rowid, ts, backend, usd in rows:
                self._add(float(ts), str(backend), float(usd))
                self._seen = int(rowid)
        return state

    def _add(self, ts: float, backend: str, usd: float) -> None:
        for key in (TOTAL, backend):
            for width in (HOUR, DAY):
                window = self._windows.get((key, width))
                if window is None:
                    window = self._windows[(key, width)] = _Window(width)
                window.add(ts, usd)

    def _settled(self, key: str, width: float, now: float) -> float:
        with self._mem:
            window = self._windows.get((key, width))
            return window.sum(now) if window is not None else 0.0

    def _held(self, db: sqlite3.Connection) -> dict[str, float]:
        held: dict[str, float] = {TOTAL: 0.0}
        for backend, usd in db.execute("SELECT backend, SUM(usd) FROM reserved GROUP BY backend"):
            held[str(backend)] = float(usd)
            held[TOTAL] += float(usd)
        return held

    def _over(
        self, usd: float, limits: tuple[Limit, ...], now: float, held: dict[str, float]
    ) -> Over | None:
        for limit in limits:
            spent = self._settled(limit.backend, limit.window, now) + held.get(limit.backend, 0.0)
            if spent + usd > limit.usd:
                return Over(limit, spent)
        return None

    def _halt_in(
        self, db: sqlite3.Connection, state: dict[str, str | None], now: float
    ) -> Halt | None:
        if not state.get("halt_reason"):
            return None
        until = state.get("halt_until")
        halt = Halt(
            str(state["halt_reason"]),
            float(state.get("halt_since") or 0.0),
            float(until) if until else None,
        )
        if halt.until is not None and now >= halt.until:
            _put(db, halt_reason=None, halt_since=None, halt_until=None)
            return None
        return halt

    def _admit(
        self,
        db: sqlite3.Connection,
        asks: Sequence[Ask],
        wants: Sequence[LeaseAsk] = (),
        grants: list[float] | None = None,
    ) -> list[int | Over | Halt]:
        """Each ask in turn, in one transaction: the halt, or a reservation if it fits; then each
        lease asked for (its USD granted appended to `grants`)."""
        state = self._sync(db)
        held = self._held(db)
        reclaimed = False
        out: list[int | Over | Halt] = []
        for backend, usd, limits, now, respect_halt in asks:
            if respect_halt:
                halt = self._halt_in(db, state, now)
                if halt is not None:
                    out.append(halt)
                    continue
            over = self._over(usd, limits, now, held)
            if over is not None and not reclaimed:
                reclaimed = True
                if self._reclaim(db):  # a dead worker's reservations were in the way
                    held = self._held(db)
                    over = self._over(usd, limits, now, held)
            if over is not None:
                out.append(over)
                continue
            cur = db.execute(
                "INSERT INTO reserved (pid, backend, usd, ts) VALUES (?, ?, ?, ?)",
                (self.pid, backend, usd, now),
            )
            for key in {TOTAL, backend}:
                held[key] = held.get(key, 0.0) + usd
            out.append(int(cur.lastrowid or 0))
        if wants and grants is not None:
            now = max(ask.now for ask in asks)
            halted = self._halt_in(db, state, now) is not None
            for want in wants:
                usd = 0.0 if halted else self._lease_size(want, now, held)
                if usd > 0:
                    db.execute(
                        "INSERT INTO reserved (id, pid, backend, usd, ts) VALUES (?, ?, ?, ?, ?)",
                        (want.id, self.pid, want.backend, usd, now),
                    )
                    for key in {TOTAL, want.backend}:
                        held[key] = held.get(key, 0.0) + usd
                grants.append(usd)
        return out

    def _lease_size(self, want: LeaseAsk, now: float, held: dict[str, float]) -> float:
        """What a lease may hold: what it asks, at most an eighth of the room any of its budgets
        has left (near a budget's end leases shrink, then stop); 0 below what is worth holding."""
        usd = want.usd
        for limit in want.limits:
            spent = self._settled(limit.backend, limit.window, now) + held.get(limit.backend, 0.0)
            usd = min(usd, (limit.usd - spent) / 8)
        return usd if usd >= want.least else 0.0

    # -- the event loop's calls: they never wait (Busy instead) ------------------
    def try_admit(
        self, asks: Sequence[Ask], wants: Sequence[LeaseAsk] = (), grants: list[float] | None = None
    ) -> list[int | Over | Halt]:
        """For each ask, in order: the halt (when it respects it), else a reservation id if every
        limit has room for its `usd`, else the limit it breaks; and the leases in `wants`, what
        each was granted appended to `grants`. One transaction for them all; raises Busy rather
        than wait for another process."""
        return self._write(self._quick, lambda db: self._admit(db, asks, wants, grants))

    def try_release(self, ticket: int) -> None:
        """`release`, or Busy."""
        self._write(
            self._quick, lambda db: db.execute("DELETE FROM reserved WHERE id = ?", (ticket,))
        )

    def try_halt(self, halt: Halt) -> None:
        """`halt`, or Busy."""
        self._write(self._quick, lambda db: _put_halt(db, halt))

    # -- the threads' calls (the GuardStore seam): they wait ------------------------
    def admit(
        self, asks: Sequence[Ask], wants: Sequence[LeaseAsk] = (), grants: list[float] | None = None
    ) -> list[int | Over | Halt]:
        """`try_admit`, waiting for the other processes' transactions."""
        return self._waiting(lambda db: self._admit(db, asks, wants, grants))

    def reserve(
        self, backend: str, usd: float, limits: tuple[Limit, ...], now: float
    ) -> int | Limit:
        """Reserve `usd` if every limit has room for it across all workers (an id), else the limit."""
        (got,) = self.admit([Ask(backend, usd, limits, now, False)])
        assert not isinstance(got, Halt)
        return got.limit if isinstance(got, Over) else got

    def settle(self, ticket: int, usd: float, now: float) -> None:
        """Replace reservation `ticket` by the spend it really cost."""
        self.settle_many((Settled(ticket, usd, now),))

    def settle_many(
        self,
        settled: Sequence[tuple[int, float, float]],
        drawn: Sequence[tuple[str, float, float]] = (),
        gives: Sequence[tuple[int, float]] = (),
    ) -> None:
        """Replace each reservation by what it cost, in one transaction; with it the spend of the
        requests drawn from leases (backend, usd, time) and what goes back to leases (id, usd, or
        ALL: the lease's row goes)."""
        if not (settled or drawn or gives):
            return

        def body(db: sqlite3.Connection) -> None:
            sums: dict[tuple[float, str], float] = {}  # one row per backend and time a batch
            for ticket, usd, now in settled:
                row = db.execute(
                    "DELETE FROM reserved WHERE id = ? RETURNING backend", (ticket,)
                ).fetchone()
                if row is not None and usd > 0:
                    key = (now, row[0])
                    sums[key] = sums.get(key, 0.0) + usd
            for backend, usd, now in drawn:
                if usd > 0:
                    sums[(now, backend)] = sums.get((now, backend), 0.0) + usd
            _give_back(db, gives)
            if not sums:
                return
            rows = [(now, backend, usd) for (now, backend), usd in sums.items()]
            db.executemany("INSERT INTO spend VALUES (?, ?, ?)", rows)
            last = max(row[0] for row in rows)
            if last - self._pruned >= HOUR:
                self._pruned = last
                # The newest row stays, so rowids keep growing and each worker's `_seen` holds.
                db.execute(
                    "DELETE FROM spend WHERE ts < ? AND rowid < (SELECT MAX(rowid) FROM spend)",
                    (last - DAY,),
                )

        self._waiting(body)

    def give_back(self, gives: Sequence[tuple[int, float]]) -> None:
        """Give back to leases (id, usd, or ALL: the lease's row goes), in one transaction."""
        if gives:
            self._waiting(lambda db: _give_back(db, gives))

    def release(self, ticket: int) -> None:
        """Drop reservation `ticket` (nothing was spent)."""
        self._waiting(lambda db: db.execute("DELETE FROM reserved WHERE id = ?", (ticket,)))

    def spent(self, backend: str, window: float, now: float) -> float:
        """Settled spend plus reservations in the window, across all workers."""

        def body(db: sqlite3.Connection) -> float:
            self._sync(db)
            return self._settled(backend, window, now) + self._held(db).get(backend, 0.0)

        return self._waiting(body)

    def in_flight(self) -> float:
        """USD reserved by every worker's requests not yet settled."""
        with self._lock:
            return self._held(self._db)[TOTAL]

    def halt(self, halt: Halt) -> None:
        """Stop forwarding in every worker until `halt.until` or a resume."""
        self._waiting(lambda db: _put_halt(db, halt))

    def resume(self, now: float) -> None:
        """Lift the halt everywhere; spend before `now` no longer counts."""
        self._waiting(
            lambda db: _put(db, halt_reason=None, halt_since=None, halt_until=None, baseline=now)
        )

    def halted(self, now: float) -> Halt | None:
        """The halt in force at `now` (set by any worker), if any; an expired one is lifted."""
        return self._waiting(lambda db: self._halt_in(db, self._sync(db), now))

    def close(self) -> None:
        """Drop this process's reservations (its requests are over) and close the file."""
        with self._lock:
            self._db.execute("DELETE FROM reserved WHERE pid = ?", (self.pid,))
            self._db.close()
            self._quick.close()


def _give_back(db: sqlite3.Connection, gives: Sequence[tuple[int, float]]) -> None:
    """One statement per lease however many of its requests a batch settles."""
    totals: dict[int, float] = {}
    for give in gives:
        add_give(totals, give)
    gone = [(lease,) for lease, usd in totals.items() if usd == ALL]
    if gone:
        db.executemany("DELETE FROM reserved WHERE id = ?", gone)
    less = [(usd, lease) for lease, usd in totals.items() if usd != ALL]
    if less:
        db.executemany("UPDATE reserved SET usd = max(usd - ?, 0.0) WHERE id = ?", less)


def _put(db: sqlite3.Connection, **values: object) -> None:
    db.executemany(
        "INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)",
        [(k, None if v is None else str(v)) for k, v in values.items()],
    )


def _put_halt(db: sqlite3.Connection, halt: Halt) -> None:
    _put(db, halt_reason=halt.reason, halt_since=halt.since, halt_until=halt.until)
