"""Where the guard keeps spend, reservations and the halt: the `GuardStore` seam and its SQLite store.

The store's operations are the guard's whole vocabulary (reserve, settle, release, halt, resume,
state), so a shared store (Redis, for several gateways) can replace this one without touching
the guard. Reservations live in memory only: a restart forgets requests that died with the
process, while settled spend and the halt survive it (SQLite under DRIFTGATE_HOME).
"""

from __future__ import annotations

import sqlite3
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any, NamedTuple, Protocol

DAY = 86_400.0
HOUR = 3_600.0
TOTAL = ""  # the budget key for all backends together


def guard_db_path(home: Path) -> Path:
    """Where the guard keeps its spend and halt under DRIFTGATE_HOME."""
    return home / "guard.sqlite3"


@dataclass(frozen=True)
class Limit:
    """One budget: `usd` per `window` seconds, for a backend or the total (`backend == TOTAL`)."""

    backend: str
    window: float
    usd: float

    @property
    def name(self) -> str:
        """`daily total`, `hourly budget of backend 'x'`..."""
        span = "daily" if self.window == DAY else "hourly"
        if self.backend == TOTAL:
            return f"{span} total budget"
        return f"{span} budget of backend '{self.backend}'"


@dataclass(frozen=True)
class Halt:
    """Why the guard stopped forwarding, since when, and when it lifts by itself (None: never)."""

    reason: str
    since: float
    until: float | None


class Settled(NamedTuple):
    """One reservation replaced by what its request cost, at `now`."""

    ticket: int
    usd: float
    now: float


class GuardStore(Protocol):
    """Spend, reservations and the halt flag, shared by every request of one or more gateways."""

    def reserve(
        self, backend: str, usd: float, limits: tuple[Limit, ...], now: float
    ) -> int | Limit:
        """Reserve `usd` if every limit has room for it (an id), else the first limit it breaks."""
        ...

    def admit(
        self, backend: str, usd: float, limits: tuple[Limit, ...], now: float, respect_halt: bool
    ) -> int | Limit | Halt:
        """The halt in force (when `respect_halt`), else `reserve`: one look at the store."""
        ...

    def settle(self, ticket: int, usd: float, now: float) -> None:
        """Replace reservation `ticket` by the spend it really cost."""
        ...

    def settle_many(self, settled: Sequence[tuple[int, float, float]]) -> None:
        """`settle` for each of a batch of (ticket, usd, now) (`Settled` or plain tuples), written
        in one transaction (the recorder's thread)."""
        ...

    def release(self, ticket: int) -> None:
        """Drop reservation `ticket` (nothing was spent)."""
        ...

    def spent(self, backend: str, window: float, now: float) -> float:
        """Settled spend plus reservations in the window (TOTAL: every backend)."""
        ...

    def in_flight(self) -> float:
        """USD reserved by requests not yet settled."""
        ...

    def halt(self, halt: Halt) -> None:
        """Stop forwarding until `halt.until` or a resume."""
        ...

    def resume(self, now: float) -> None:
        """Lift the halt; spend before `now` no longer counts against the budgets."""
        ...

    def halted(self, now: float) -> Halt | None:
        """The halt in force at `now`, if any (an expired one is lifted here)."""
        ...

    def close(self) -> None:
        """Release what the store holds open."""
        ...


SCHEMA = """
CREATE TABLE IF NOT EXISTS spend (ts REAL NOT NULL, backend TEXT NOT NULL, usd REAL NOT NULL);
CREATE INDEX IF NOT EXISTS spend_ts ON spend (ts);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT)
"""


BUCKETS = 1000  # most entries a window keeps: its spend is summed in width/BUCKETS-second buckets


class _Window:
    """Settled spend in one sliding window: buckets oldest first and their running sum.

    Spend within width/BUCKETS seconds of a bucket's first entry joins that bucket, which leaves
    the window when its newest spend does: a window holds at most ~BUCKETS entries however many
    requests the day sees, and may count a bucket's older spend a little longer than an exact
    window would (more, never less). One entry per settlement kept a day's requests in memory.
    """

    __slots__ = ("entries", "grain", "total", "width")

    def __init__(self, width: float) -> None:
        self.width = width
        self.grain = width / BUCKETS
        self.entries: deque[list[float]] = deque()  # [first ts, newest ts, usd]
        self.total = 0.0

    def add(self, ts: float, usd: float) -> None:
        entries = self.entries
        last = entries[-1] if entries else None
        if last is not None and 0.0 <= ts - last[0] < self.grain:
            last[1] = max(last[1], ts)
            last[2] += usd
        else:
            entries.append([ts, ts, usd])
        self.total += usd

    def sum(self, now: float) -> float:
        start = now - self.width
        entries = self.entries
        while entries and entries[0][1] < start:
            self.total -= entries.popleft()[2]
        if not entries:
            self.total = 0.0  # no drift from repeated subtraction
        return self.total


class SqliteGuardStore:
    """In-memory sums behind one lock, with settled spend and the halt written through to SQLite.

    `path=None` keeps nothing on disk. The lock is held for microseconds: reservations run on the
    event loop, settlements on the recorder's thread. Running sums per window keep a reservation
    O(1) amortised however many requests the day has seen.
    """

    def __init__(self, path: Path | None) -> None:
        self._lock = threading.Lock()
        self._db_lock = threading.Lock()  # one statement sequence at a time on the connection
        self._windows: dict[tuple[str, float], _Window] = {}
        self._reserved: dict[int, tuple[str, float]] = {}
        self._held: dict[str, float] = {}
        self._ids = count(1)
        self._halt: Halt | None = None
        self._pruned = 0.0  # when rows older than a day were last deleted
        self._db: sqlite3.Connection | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL: a power cut may lose the last settlements, never corrupt the file. At the default
            # (FULL) every settlement waited for an fsync on the recorder's thread (bench/README.md).
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self._load()

    def _load(self) -> None:
        assert self._db is not None
        state = dict(self._db.execute("SELECT key, value FROM state").fetchall())
        baseline = float(state.get("baseline") or 0.0)
        rows = self._db.execute(
            "SELECT ts, backend, usd FROM spend WHERE ts >= ? ORDER BY ts", (baseline,)
        ).fetchall()
        for ts, backend, usd in rows:
            self._add(float(ts), str(backend), float(usd))
        if state.get("halt_reason"):
            until = state.get("halt_until")
            self._halt = Halt(
                str(state["halt_reason"]),
                float(state.get("halt_since") or 0.0),
                float(until) if until else None,
            )

    def _put(self, **values: object) -> None:
        if self._db is not None:
            with self._db_lock:  # not inside a settlement batch's transaction
                self._db.executemany(
                    "INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)",
                    [(k, None if v is None else str(v)) for k, v in values.items()],
                )

    def _add(self, ts: float, backend: str, usd: float) -> None:
        for key in (TOTAL, backend):
            for width in (HOUR, DAY):
                window = self._windows.get((key, width))
                if window is None:
                    window = self._windows[(key, width)] = _Window(width)
                window.add(ts, usd)

    def _sum(self, key: str, width: float, now: float) -> float:
        window = self._windows.get((key, width))
        settled = window.sum(now) if window is not None else 0.0
        return settled + self._held.get(key, 0.0)

    def _hold(self, backend: str, usd: float) -> None:
        for key in (TOTAL, backend):
            self._held[key] = self._held.get(key, 0.0) + usd

    def admit(
        self, backend: str, usd: float, limits: tuple[Limit, ...], now: float, respect_halt: bool
    ) -> int | Limit | Halt:
        with self._lock:
            if respect_halt and self._halt is not None:
                halt = self._halted(now)
                if halt is not None:
                    return halt
            return self._reserve(backend, usd, limits, now)

    def reserve(
        self, backend: str, usd: float, limits: tuple[Limit, ...], now: float
    ) -> int | Limit:
        with self._lock:
            return self._reserve(backend, usd, limits, now)

    def _reserve(
        self, backend: str, usd: float, limits: tuple[Limit, ...], now: float
    ) -> int | Limit:
        windows, held = self._windows, self._held
        for limit in limits:  # self._sum, inline: a call per limit was a third of a reservation
            key = limit.backend
            window = windows.get((key, limit.window))
            spent = held.get(key, 0.0)
            if window is not None:
                spent = window.sum(now) + spent
            if spent + usd > limit.usd:
                return limit
        ticket = next(self._ids)
        self._reserved[ticket] = (backend, usd)
        held[TOTAL] = held.get(TOTAL, 0.0) + usd
        held[backend] = held.get(backend, 0.0) + usd
        return ticket

    def settle(self, ticket: int, usd: float, now: float) -> None:
        self.settle_many((Settled(ticket, usd, now),))

    def settle_many(self, settled: Sequence[tuple[int, float, float]]) -> None:
        # A batch's settlements to one backend at one time are one sum: one entry in each window
        # and one row in the file (a row per settlement was most of what the guard cost a request).
        sums: dict[tuple[str, float], float] = {}
        with self._lock:
            reserved = self._reserved
            freed: dict[str, float] = {}
            for ticket, usd, now in settled:
                entry = reserved.pop(ticket, None)
                if entry is None:
                    continue
                backend = entry[0]
                freed[backend] = freed.get(backend, 0.0) + entry[1]
                if usd > 0:
                    key = (backend, now)
                    sums[key] = sums.get(key, 0.0) + usd
            for backend, usd in freed.items():
                self._hold(backend, -usd)
            for (backend, now), usd in sums.items():
                self._add(now, backend, usd)
        if sums:
            self._write([(now, backend, usd) for (backend, now), usd in sums.items()])

    def settle_at(self, settled: Sequence[tuple[Sequence[Any], float | None]], now: float) -> None:
        """`settle_many` of (ticket, usd or None) pairs, all at `now`; a ticket's first item is its
        id. What the guard hands over as it is: no list of (id, usd, now) made for the batch."""
        sums: dict[str, float] = {}
        with self._lock:
            reserved = self._reserved
            freed: dict[str, float] = {}
            for ticket, usd in settled:
                entry = reserved.pop(ticket[0], None)
                if entry is None:
                    continue
                backend = entry[0]
                freed[backend] = freed.get(backend, 0.0) + entry[1]
                if usd and usd > 0:
                    sums[backend] = sums.get(backend, 0.0) + usd
            for backend, usd in freed.items():
                self._hold(backend, -usd)
            for backend, usd in sums.items():
                self._add(now, backend, usd)
        if sums:
            self._write([(now, backend, usd) for backend, usd in sums.items()])

    def _write(self, rows: list[tuple[float, str, float]]) -> None:
        """Settled spend rows (time, backend, usd) into the file, in one transaction."""
        if self._db is None:
            return
        last = max(row[0] for row in rows)
        with self._db_lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT INTO spend VALUES (?, ?, ?)", rows)
                if last - self._pruned >= HOUR:  # a delete per settlement was a write each time
                    self._pruned = last
                    self._db.execute("DELETE FROM spend WHERE ts < ?", (last - DAY,))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def release(self, ticket: int) -> None:
        with self._lock:
            entry = self._reserved.pop(ticket, None)
            if entry is not None:
                self._hold(entry[0], -entry[1])

    def spent(self, backend: str, window: float, now: float) -> float:
        with self._lock:
            return self._sum(backend, window, now)

    def in_flight(self) -> float:
        with self._lock:
            return sum(u for _, u in self._reserved.values())

    def halt(self, halt: Halt) -> None:
        with self._lock:
            self._halt = halt
            self._put(halt_reason=halt.reason, halt_since=halt.since, halt_until=halt.until)

    def resume(self, now: float) -> None:
        with self._lock:
            self._halt = None
            self._windows.clear()
            self._put(halt_reason=None, halt_since=None, halt_until=None, baseline=now)

    def halted(self, now: float) -> Halt | None:
        with self._lock:
            return self._halted(now)

    def _halted(self, now: float) -> Halt | None:
        halt = self._halt
        if halt is not None and halt.until is not None and now >= halt.until:
            self._halt = None
            self._put(halt_reason=None, halt_since=None, halt_until=None)
            return None
        return halt

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def resume_offline(path: Path, now: float) -> bool:
    """Lift a halt recorded at `path` while no gateway runs; True if one was in force."""
    if not path.exists():
        return False
    store = SqliteGuardStore(path)
    try:
        was = store.halted(now) is not None
        store.resume(now)
        return was
    finally:
        store.close()
