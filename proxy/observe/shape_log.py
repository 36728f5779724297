"""The shape log: each request's shape, deduplicated with a count, in a capped SQLite file.

The request path counts the request and, while fewer than SAMPLE_PER_FLUSH are waiting, appends
(endpoint, headers, raw body) to a deque; a writer thread parses the body, extracts the shape
(shape_extract.py) and upserts it every FLUSH_SECONDS, each shape counting for its share of the
requests seen.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from driftgate.proxy.observe.shape_extract import shape_of

log = logging.getLogger("driftgate.shapes")
FLUSH_SECONDS = 0.5
# Requests whose shape is taken per flush; the others are only counted, and each shape taken
# stands for its share of them. Taking a shape costs far more CPU than the rest of what a request
# leaves to be done after its answer (and holds the GIL the request path needs), and holding
# every request's headers until the flush made the garbage collector walk them: past this many a
# flush, a request costs the request path one counter increment. 100 shapes a second still takes
# every request's shape below 100 requests a second; above, a shape's counts are estimates.
SAMPLE_PER_FLUSH = 50

SCHEMA = """
CREATE TABLE IF NOT EXISTS shapes (
  key TEXT PRIMARY KEY,
  family TEXT NOT NULL,
  version TEXT,
  endpoint TEXT NOT NULL,
  shape TEXT NOT NULL,
  count INTEGER NOT NULL,
  first_seen REAL NOT NULL,
  last_seen REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS shapes_last_seen ON shapes(last_seen);
CREATE TABLE IF NOT EXISTS shape_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
Pending = tuple[str, Mapping[str, str], bytes]


def connect(path: Path) -> sqlite3.Connection:
    """The shape log's database, created if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=10, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA)
    return db


def shape_key(shape: Mapping[str, Any]) -> str:
    """A stable id for a shape: equal shapes share one row."""
    return hashlib.sha256(orjson.dumps(shape, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def write_shapes(
    db: sqlite3.Connection,
    shapes: list[dict[str, Any]],
    now: float,
    max_shapes: int,
    dropped: int = 0,
    weights: list[int] | None = None,
) -> None:
    """Upsert `shapes` (counting repeats, each `weights[i]` requests, default 1), then trim to
    `max_shapes` rows, least recently seen first."""
    counts: Counter[str] = Counter()
    by_key: dict[str, dict[str, Any]] = {}
    for i, shape in enumerate(shapes):
        key = shape_key(shape)
        counts[key] += weights[i] if weights is not None else 1
        by_key.setdefault(key, shape)
    with db:
        db.executemany(
            "INSERT INTO shapes (key, family, version, endpoint, shape, count, first_seen,"
            " last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET"
            " count = count + excluded.count, last_seen = excluded.last_seen",
            [
                (key, s["client"]["family"], s["client"]["version"], s["endpoint"],
                 orjson.dumps(s, option=orjson.OPT_SORT_KEYS).decode(), n, now, now)
                for key, n in counts.items()
                for s in (by_key[key],)
            ],
        )  # fmt: skip
        if dropped:
            db.execute(
                "INSERT INTO shape_meta VALUES ('dropped', ?) ON CONFLICT(name) DO UPDATE SET"
                " value = value + excluded.value",
                (dropped,),
            )
        (total,) = db.execute("SELECT count(*) FROM shapes").fetchone()
        if total > max_shapes:
            db.execute(
                "DELETE FROM shapes WHERE key IN (SELECT key FROM shapes"
                " ORDER BY last_seen, count LIMIT ?)",
                (total - max_shapes,),
            )


def extract(item: Pending) -> dict[str, Any]:
    """The shape of one pending request (body parsed here, off the request path)."""
    endpoint, headers, raw = item
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    return shape_of(endpoint, headers.items(), headers.get("user-agent"), body)


def spread(items: list[Pending], requests: int) -> list[tuple[Pending, int]]:
    """Each item with how many of `requests` it stands for (the weights add up to `requests`)."""
    k = len(items)
    if not k:
        return []
    step = requests / k
    return [(item, round((i + 1) * step) - round(i * step)) for i, item in enumerate(items)]


class ShapeLog:
    """Collects request shapes off the request path and writes them from its own thread."""

    def __init__(
        self,
        path: Path,
        max_shapes: int,
        *,
        clock: Callable[[], float] = time.time,
        flush_seconds: float = FLUSH_SECONDS,
        sample_per_flush: int = SAMPLE_PER_FLUSH,
    ) -> None:
        self.path = path
        self.max_shapes = max_shapes
        self._clock = clock
        self._flush_seconds = flush_seconds
        self._budget = sample_per_flush
        self._pending: deque[Pending] = deque()
        self._seen = 0  # requests offered, ever (only the request path writes it)
        self._counted = 0  # of those, how many the writer has accounted for
        self._stop = threading.Event()
        # Set by the first request of a flush's sample: with no traffic the writer sleeps until
        # then instead of waking every flush_seconds to find nothing.
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def offer(self, endpoint: str, headers: Mapping[str, str], raw: bytes) -> None:
        """Count one request and keep it for the writer while this flush's sample has room."""
        self._seen += 1
        pending = self._pending
        if len(pending) < self._budget:
            if not pending:
                self._ready.set()
            pending.append((endpoint, headers, raw))

    def start(self) -> None:
        """Start the writer thread (opening the file there; a failure is logged, not raised)."""
        self._thread = threading.Thread(target=self._run, name="driftgate-shapes", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the writer after a last flush."""
        self._stop.set()
        self._ready.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        try:
            db = connect(self.path)
        except (OSError, sqlite3.Error) as exc:
            log.warning("shapes are not being saved: cannot open %s (%s)", self.path, exc)
            return
        try:
            while True:
                self._ready.wait()  # a request to sample, or close()
                if self._stop.wait(self._flush_seconds):  # the sample gathers meanwhile
                    break
                self._ready.clear()
                self.flush(db)
                if self._pending:  # offered while this flush took the others
                    self._ready.set()
            self.flush(db)
        finally:
            db.close()

    def flush(self, db: sqlite3.Connection) -> None:
        """Write what is pending now."""
        seen = self._seen
        pending = [self._pending.popleft() for _ in range(len(self._pending))]
        requests, self._counted = seen - self._counted, seen
        batch: list[dict[str, Any]] = []
        weights: list[int] = []
        for item, weight in spread(pending, max(requests, len(pending))):
            try:
                batch.append(extract(item))
                weights.append(weight)
            except Exception as exc:  # skipped, never fatal; the message names no content
                log.warning("could not take a request's shape: %s", type(exc).__name__)
        if not batch:
            return
        try:
            write_shapes(db, batch, self._clock(), self.max_shapes, weights=weights)
        except sqlite3.Error as exc:
            log.warning("could not write %d shapes to %s: %s", len(batch), self.path, exc)
