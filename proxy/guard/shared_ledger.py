"""The guard's store for several worker processes: reservations and spend in one SQLite file.

With `--workers N` every worker admits requests against the same budgets, so a reservation must
see what the other workers hold. Each reservation is a row written in a `BEGIN IMMEDIATE`
transaction (one writer at a time across processes, waiting up to the busy timeout), after the
transaction has read every other worker's reservations and settled spend. Settled spend is read
incrementally: each process keeps running window sums (as SqliteGuardStore does) and adds only
the rows written since its last look, so a reservation costs a few indexed statements however
much the day has seen. The halt and the resume baseline live in the `state` table, read in the
same transactions, so a halt by one worker is seen by all.

A worker that dies leaves its reservations behind: they are dropped when a worker starts and
before a budget is declared reached, when their process no longer runs.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from driftgate.proxy.guard.ledger import (
    DAY,
    HOUR,
    SCHEMA,
    TOTAL,
    Halt,
    Limit,
    _Window,
)

RESERVED = """
CREATE TABLE IF NOT EXISTS reserved (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  pid INTEGER NOT NULL, backend TEXT NOT NULL, usd REAL NOT NULL, ts REAL NOT NULL
)
"""
BUSY_MS = 10_000  # how long a worker waits for another's transaction (they take microseconds)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


class SharedSqliteGuardStore:
    """A GuardStore whose reservations, spend and halt hold across processes sharing `path`."""

    def __init__(self, path: Path, pid: int | None = None) -> None:
        self._pid = os.getpid() if pid is None else pid
        self._lock = threading.Lock()  # the loop reserves, the recorder's thread settles
        self._windows: dict[tuple[str, float], _Window] = {}
        self._seen = 0  # the last spend rowid added to the windows
        self._baseline: float | None = None
        self._pruned = 0.0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=BUSY_MS / 1000
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: a power cut may lose, never corrupt
        self._db.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        with self._lock:
            self._db.executescript(SCHEMA + ";" + RESERVED)  # idempotent: every worker runs it
            self._write(self._reclaim)

    def _write(self, body: Callable[[], object]) -> None:
        """Run `body()` in one BEGIN IMMEDIATE transaction (the caller holds the lock)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            body()
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _reclaim(self) -> int:
        """Drop the reservations of processes that no longer run; how many."""
        pids = [int(p) for (p,) in self._db.execute("SELECT DISTINCT pid FROM reserved")]
        dead = [p for p in pids if p != self._pid and not _alive(p)]
        dropped = 0
        for pid in dead:
            dropped += self._db.execute("DELETE FROM reserved WHERE pid = ?", (pid,)).rowcount
        return dropped

    def _state(self) -> dict[str, str | None]:
        return dict(self._db.execute("SELECT key, value FROM state").fetchall())

    def _sync(self) -> dict[str, str | None]:
        """Bring the windows up to date with the file; the state table as it is now."""
        state = self._state()
        baseline = float(state.get("baseline") or 0.0)
        if baseline != self._baseline:  # first look, or a resume somewhere: recount from it
            self._baseline = baseline
            self._windows.clear()
            self._seen = 0
        rows = self._db.execute(
            "SELECT rowid, ts, backend, usd FROM spend WHERE rowid > ? AND ts >= ? ORDER BY rowid",
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

    def _held(self) -> dict[str, float]:
        held: dict[str, float] = {TOTAL: 0.0}
        for backend, usd in self._db.execute(
            "SELECT backend, SUM(usd) FROM reserved GROUP BY backend"
        ):
            held[str(backend)] = float(usd)
            held[TOTAL] += float(usd)
        return held

    def _over(
        self, usd: float, limits: tuple[Limit, ...], now: float, held: dict[str, float]
    ) -> Limit | None:
        for limit in limits:
            window = self._windows.get((limit.backend, limit.window))
            settled = window.sum(now) if window is not None else 0.0
            if settled + held.get(limit.backend, 0.0) + usd > limit.usd:
                return limit
        return None

    def reserve(
        self, backend: str, usd: float, limits: tuple[Limit, ...], now: float
    ) -> int | Limit:
        """Reserve `usd` if every limit has room for it across all workers (an id), else the limit."""
        got: list[int | Limit] = []

        def body() -> None:
            self._sync()
            over = self._over(usd, limits, now, self._held())
            if over is not None and self._reclaim():  # a dead worker's reservations were in the way
                over = self._over(usd, limits, now, self._held())
            if over is not None:
                got.append(over)
                return
            cur = self._db.execute(
                "INSERT INTO reserved (pid, backend, usd, ts) VALUES (?, ?, ?, ?)",
                (self._pid, backend, usd, now),
            )
            got.append(int(cur.lastrowid or 0))

        with self._lock:
            self._write(body)
        return got[0]

    def settle(self, ticket: int, usd: float, now: float) -> None:
        """Replace reservation `ticket` by the spend it really cost."""

        def body() -> None:
            row = self._db.execute(
                "DELETE FROM reserved WHERE id = ? RETURNING backend", (ticket,)
            ).fetchone()
            if row is None or usd <= 0:
                return
            self._db.execute("INSERT INTO spend VALUES (?, ?, ?)", (now, row[0], usd))
            if now - self._pruned >= HOUR:
                self._pruned = now
                # The newest row stays, so rowids keep growing and each worker's `_seen` holds.
                self._db.execute(
                    "DELETE FROM spend WHERE ts < ? AND rowid < (SELECT MAX(rowid) FROM spend)",
                    (now - DAY,),
                )

        with self._lock:
            self._write(body)

    def release(self, ticket: int) -> None:
        """Drop reservation `ticket` (nothing was spent)."""
        with self._lock:
            self._db.execute("DELETE FROM reserved WHERE id = ?", (ticket,))

    def spent(self, backend: str, window: float, now: float) -> float:
        """Settled spend plus reservations in the window, across all workers."""
        with self._lock:
            self._sync()
            own = self._windows.get((backend, window))
            settled = own.sum(now) if own is not None else 0.0
            return settled + self._held().get(backend, 0.0)

    def in_flight(self) -> float:
        """USD reserved by every worker's requests not yet settled."""
        with self._lock:
            return self._held()[TOTAL]

    def halt(self, halt: Halt) -> None:
        """Stop forwarding in every worker until `halt.until` or a resume."""
        with self._lock:
            self._put(halt_reason=halt.reason, halt_since=halt.since, halt_until=halt.until)

    def resume(self, now: float) -> None:
        """Lift the halt everywhere; spend before `now` no longer counts."""
        with self._lock:
            self._put(halt_reason=None, halt_since=None, halt_until=None, baseline=now)

    def halted(self, now: float) -> Halt | None:
        """The halt in force at `now` (set by any worker), if any; an expired one is lifted."""
        with self._lock:
            state = self._state()
            if not state.get("halt_reason"):
                return None
            until = state.get("halt_until")
            halt = Halt(
                str(state["halt_reason"]),
                float(state.get("halt_since") or 0.0),
                float(until) if until else None,
            )
            if halt.until is not None and now >= halt.until:
                self._put(halt_reason=None, halt_since=None, halt_until=None)
                return None
            return halt

    def _put(self, **values: object) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)",
            [(k, None if v is None else str(v)) for k, v in values.items()],
        )

    def close(self) -> None:
        """Drop this process's reservations (its requests are over) and close the file."""
        with self._lock:
            self._db.execute("DELETE FROM reserved WHERE pid = ?", (self._pid,))
            self._db.close()
