"""The usage database: SQLite in DRIFTGATE_HOME, its versioned schema, retention, totals."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from driftgate.proxy.endpoints import COUNTING
from driftgate.proxy.errors import ConfigError

DB_NAME = "usage.sqlite3"
REFUSALS_LISTED = 20  # (outcome, reason, backend) lines listed, the most frequent first

_SCHEMA_2_COLUMNS = (
    "request_id TEXT NOT NULL DEFAULT ''",
    "client TEXT NOT NULL DEFAULT 'other'",
    "client_version TEXT",
    "model_requested TEXT NOT NULL DEFAULT ''",
    "reasoning_tokens INTEGER NOT NULL DEFAULT 0",
    "rl_requests_limit INTEGER",
    "rl_requests_remaining INTEGER",
    "rl_tokens_limit INTEGER",
    "rl_tokens_remaining INTEGER",
    "rl_reset_s REAL",
    "retry_after_s REAL",
    "ratelimit TEXT",
)

# Append-only: entry N brings a database from user_version N to N+1 (records.RequestRecord's
# fields are the columns, in order).
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
    # Schema 2: request id, client family/version, requested model, reasoning tokens and the
    # answer's rate-limit headers.
    "".join(f"ALTER TABLE usage ADD COLUMN {column};\n" for column in _SCHEMA_2_COLUMNS),
    # Schema 3: requests the gateway refused without forwarding (the spend guard), and why.
    "ALTER TABLE usage ADD COLUMN outcome TEXT;\nALTER TABLE usage ADD COLUMN reason TEXT;\n",
)


def usage_db_path(home: Path) -> Path:
    """Where the gateway keeps usage: $DRIFTGATE_HOME/usage.sqlite3."""
    return home / DB_NAME


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


def _version(conn: sqlite3.Connection, path: Path | None) -> int:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise ConfigError(
            f"{path}: usage database schema {version} is newer than this driftgate knows "
            f"({len(MIGRATIONS)}); upgrade driftgate or move the file aside"
        )
    return version


def _migrate(conn: sqlite3.Connection, path: Path | None) -> None:
    try:
        _migrate_once(conn, path)
    except ConfigError:
        conn.close()
        raise


def _migrate_once(conn: sqlite3.Connection, path: Path | None) -> None:
    if _version(conn, path) == len(MIGRATIONS):
        return
    # Workers (--workers N) open a new file at the same moment: the first one migrates inside
    # BEGIN IMMEDIATE, the others wait for it (busy timeout) and then find nothing left to do.
    mode = conn.isolation_level
    conn.isolation_level = None
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = _version(conn, path)
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.isolation_level = mode


def prune(conn: sqlite3.Connection, before: float) -> int:
    """Delete records older than `before` (Unix time); the number deleted."""
    with conn:
        return conn.execute("DELETE FROM usage WHERE ts < ?", (before,)).rowcount


_COUNTS = f"({', '.join(repr(n) for n in sorted(COUNTING))})"  # constants, not client input
# A completion that was forwarded: not a token count, not refused by the gateway (the guard).
_COMPLETION = f"endpoint NOT IN {_COUNTS} AND outcome IS NULL"
_SUMMARY = f"""
    SELECT backend, model,
      SUM({_COMPLETION}), SUM(endpoint IN {_COUNTS}), SUM(status >= 400 AND outcome IS NULL),
      SUM(CASE WHEN {_COMPLETION} THEN input_tokens ELSE 0 END),
      SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens),
      SUM(cost_usd), SUM(cost_usd IS NULL AND status < 400 AND {_COMPLETION}),
      AVG(CASE WHEN {_COMPLETION} THEN latency_ms END),
      AVG(CASE WHEN {_COMPLETION} THEN ttfb_ms END),
      SUM(outcome IS NOT NULL)
    FROM usage WHERE ts >= ? GROUP BY backend, model ORDER BY backend, model
"""


def summarise(conn: sqlite3.Connection, since: float | None = None) -> list[dict[str, Any]]:
    """Totals per backend and model; token counts and refused requests are counted apart."""
    rows = conn.execute(_SUMMARY, (since if since is not None else float("-inf"),)).fetchall()
    keys = (
        "backend", "model", "requests", "count_tokens", "errors", "input_tokens", "output_tokens",
        "cache_read_tokens", "cache_write_tokens", "cost_usd", "unpriced", "avg_latency_ms",
        "avg_ttfb_ms", "refused",
    )  # fmt: skip
    return [dict(zip(keys, row, strict=True)) for row in rows]


def refusals(
    conn: sqlite3.Connection, since: float | None = None, until: float | None = None
) -> list[dict[str, Any]]:
    """Requests the gateway refused without forwarding, per outcome, reason and backend."""
    rows = conn.execute(
        """
        SELECT outcome, reason, backend, COUNT(*), MIN(ts), MAX(ts) FROM usage
        WHERE outcome IS NOT NULL AND ts >= ? AND ts <= ?
        GROUP BY outcome, reason, backend ORDER BY COUNT(*) DESC, MAX(ts) DESC LIMIT ?
        """,
        (
            since if since is not None else float("-inf"),
            until if until is not None else float("inf"),
            REFUSALS_LISTED,
        ),
    ).fetchall()
    return [refusal_doc(*row) for row in rows]


def refusal_doc(
    outcome: str, reason: str | None, backend: str, requests: int, first: float, last: float
) -> dict[str, Any]:
    """One line of the refusals list (what /analytics, `driftgate stats` and `usage` show)."""
    return {
        "outcome": outcome,
        "reason": reason,
        "backend": backend,
        "requests": int(requests),
        "first": float(first),
        "last": float(last),
    }
