"""Usage, cost and latency per request, written to SQLite by a background thread."""

from __future__ import annotations

import logging
import operator
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from driftgate.proxy.errors import ConfigError, Dialect
from driftgate.proxy.templates.loader import TemplateSet

DB_NAME = "usage.sqlite3"
COUNT_TOKENS = "count_tokens"
_BATCH = 500
_QUEUE_LIMIT = 100_000  # beyond this, records are dropped (and counted) rather than grow memory
_log = logging.getLogger("driftgate.analytics")


@dataclass(frozen=True)
class UsageRecord:
    """One answered request: who served it, tokens, cost and timing. No content, no secrets."""

    ts: float
    backend: str
    model: str
    client_dialect: str
    upstream_dialect: str
    endpoint: str
    status: int
    stream: bool
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    latency_ms: float
    ttfb_ms: float | None
    session: str | None
    cost_usd: float | None


Row = tuple[Any, ...]  # a UsageRecord's values in column order: what the thread inserts
Job = Callable[[], list[Row]]
_COLUMNS = [f.name for f in fields(UsageRecord)]
_ROW = operator.attrgetter(*_COLUMNS)
_INSERT = f"INSERT INTO usage ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"

# Append-only: entry N brings a database from user_version N to N+1.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE usage (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL, backend TEXT NOT NULL, model TEXT NOT NULL,
        client_dialect TEXT NOT NULL, upstream_dialect TEXT NOT NULL, endpoint TEXT NOT NULL,
        status INTEGER NOT NULL, stream INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
        cache_read_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL,
        latency_ms REAL NOT NULL, ttfb_ms REAL, session TEXT, cost_usd REAL
    );
    CREATE INDEX usage_ts ON usage (ts);
    """,
)


def usage_db_path(home: Path) -> Path:
    """Where the gateway keeps usage: $DRIFTGATE_HOME/usage.sqlite3."""
    return home / DB_NAME


Prices = tuple[float | None, float | None, float | None, float | None]  # input, output, cache r/w


def prices(model: str, dialect: Dialect, templates: TemplateSet) -> Prices | None:
    """USD per MTok (input, output, cache read, cache write) from the template; None if unpriced."""
    template = templates.get("openai" if dialect == "responses" else dialect)
    if template is None:
        return None
    models = template.doc["models"]
    facts = models.get(model) or models.get(template.doc["aliases"].get(model, ""))
    pricing = facts.get("pricing") if facts else None
    if not pricing:
        return None
    found = tuple(pricing.get(k) for k in ("input", "output", "cache_read", "cache_write"))
    return tuple(None if v is None else float(v) for v in found)  # type: ignore[return-value]


def priced(
    table: Prices | None,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
) -> float | None:
    """USD for these counts at `table`'s prices; None when a needed price is missing.

    input_tokens excludes cache reads and writes (Anthropic's meaning; OpenAI's prompt_tokens
    minus cached_tokens). An unknown cache price matters only when that count is non-zero.
    """
    if table is None:
        return None
    p_in, p_out, p_read, p_write = table
    if p_in is None or p_out is None:
        return None
    total = input_tokens * p_in + output_tokens * p_out
    for count, price in ((cache_read_tokens, p_read), (cache_write_tokens, p_write)):
        if count:
            if price is None:
                return None
            total += count * price
    return total / 1_000_000


def cost_usd(
    model: str,
    dialect: Dialect,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
    templates: TemplateSet,
) -> float | None:
    """USD from the template's per-MTok prices; None when the model or a needed price is unknown."""
    table = prices(model, dialect, templates)
    return priced(table, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)


def open_db(path: Path | None) -> sqlite3.Connection:
    """A connection to the usage database (in memory for None), its schema migrated."""
    if path is None:
        conn = sqlite3.connect(":memory:", check_same_thread=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # session ids are private
        conn = sqlite3.connect(path, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")  # `driftgate usage` reads while the gateway writes
        # Safe in WAL (a power cut may lose the last batches, never corrupt): no fsync per batch.
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    _migrate(conn, path)
    return conn


def _migrate(conn: sqlite3.Connection, path: Path | None) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        conn.close()
        raise ConfigError(
            f"{path}: usage database schema {version} is newer than this driftgate knows "
            f"({len(MIGRATIONS)}); upgrade driftgate or move the file aside"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")


def summarise(conn: sqlite3.Connection, since: float | None = None) -> list[dict[str, Any]]:
    """Totals per backend and model; count_tokens calls are counted apart, never as completions."""
    rows = conn.execute(
        """
        SELECT backend, model,
          SUM(endpoint != 'count_tokens'), SUM(endpoint = 'count_tokens'), SUM(status >= 400),
          SUM(CASE WHEN endpoint != 'count_tokens' THEN input_tokens ELSE 0 END),
          SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens),
          SUM(cost_usd), SUM(cost_usd IS NULL AND status < 400 AND endpoint != 'count_tokens'),
          AVG(CASE WHEN endpoint != 'count_tokens' THEN latency_ms END),
          AVG(CASE WHEN endpoint != 'count_tokens' THEN ttfb_ms END)
        FROM usage WHERE ts >= ? GROUP BY backend, model ORDER BY backend, model
        """,
        (since if since is not None else float("-inf"),),
    ).fetchall()
    keys = (
        "backend", "model", "requests", "count_tokens", "errors", "input_tokens", "output_tokens",
        "cache_read_tokens", "cache_write_tokens", "cost_usd", "unpriced", "avg_latency_ms",
        "avg_ttfb_ms",
    )  # fmt: skip
    return [dict(zip(keys, row, strict=True)) for row in rows]


class Recorder:
    """Queue records on the request path; a daemon thread batches them into SQLite."""

    def __init__(self, db_path: Path | None) -> None:
        self._conn = open_db(db_path)
        self._lock = threading.Lock()
        self._queue: queue.Queue[Row | Job | None] = queue.Queue(maxsize=_QUEUE_LIMIT)
        self._closed = False
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="driftgate-usage", daemon=True)
        self._thread.start()

    def record(self, rec: UsageRecord) -> None:
        """Queue one record; O(1), never blocks, never raises."""
        self._put(_ROW(_as_stored(rec)))

    def submit(self, job: Job) -> None:
        """Queue a job that builds rows on the recorder's thread; O(1), never blocks or raises.

        The job's rows must already be as stored (count_tokens without output or cost).
        """
        self._put(job)

    def _put(self, item: Row | Job) -> None:
        if self._closed:
            self.dropped += 1
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def flush(self) -> None:
        """Wait until every queued record is written."""
        if not self._closed:
            self._queue.join()

    def close(self) -> None:
        """Write what is queued, stop the thread and close the database."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        with self._lock:
            self._conn.close()

    def summary(self, since: float | None = None) -> list[dict[str, Any]]:
        """Per backend+model totals of what was recorded (queued records included)."""
        self.flush()
        with self._lock:
            return summarise(self._conn, since)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            records: list[Row] = []
            stop = False
            for item in batch:
                if isinstance(item, tuple):
                    records.append(item)
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
            except sqlite3.Error as exc:  # a full disk must not take the gateway down
                _log.warning("usage: %d records not written: %s", len(records), exc)
            finally:
                for _ in batch:
                    self._queue.task_done()
            if stop:
                return

    def _write(self, rows: list[Row]) -> None:
        with self._lock, self._conn:
            self._conn.executemany(_INSERT, rows)


def _as_stored(rec: UsageRecord) -> UsageRecord:  # attrgetter then: ~0.5 us a row, astuple ~13
    """count_tokens is an estimate request, never a completion: no output, no cost."""
    if rec.endpoint == COUNT_TOKENS and (rec.output_tokens or rec.cost_usd != 0.0):
        return replace(rec, output_tokens=0, cost_usd=0.0)
    return rec
