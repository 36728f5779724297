"""The stored conversations' SQLite file (DRIFTGATE_HOME/responses.sqlite3): its schema, what
is written and read, and the bounds kept across every process that writes it (each process has
one writer thread: proxy/responses/writer.py).

With --workers N each worker writes the same file. Totals of the turns table (count, bytes) are
kept by triggers, so a writer sees every worker's turns in one row and evicts the oldest, whoever
filed them, in the transaction that went past a bound. Which turns are gone is published in a
watermark file (every turn created before it was deleted) that workers read before trusting the
turns they hold in memory. One process keeps no totals in the file (its memory indexes every
turn): it drops the triggers and the totals row, and workers (opening the file later, or
writing to it when one process opened it meanwhile) count again.
"""

from __future__ import annotations

import math
import mmap
import os
import sqlite3
import struct
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from driftgate.proxy.responses.settings import ResponsesSettings
from driftgate.proxy.responses.turns import Turn

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS turns ("
    " id TEXT PRIMARY KEY, previous TEXT, created REAL NOT NULL, items BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS turns_created ON turns (created)",
    "CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY, created REAL NOT NULL, item BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS items_created ON items (created)",
    "CREATE TABLE IF NOT EXISTS totals ("
    " one INTEGER PRIMARY KEY CHECK (one = 1), turns INTEGER NOT NULL, bytes INTEGER NOT NULL)",
)
_TRIGGERS = ("turns_added", "turns_changed", "turns_gone")
# With workers: the totals (counted once, when the row is missing) and the triggers keeping them.
_SHARED = (
    "INSERT OR IGNORE INTO totals SELECT 1, count(*), coalesce(sum(length(items)), 0) FROM turns",
    "CREATE TRIGGER IF NOT EXISTS turns_added AFTER INSERT ON turns BEGIN"
    " UPDATE totals SET turns = turns + 1, bytes = bytes + length(NEW.items); END",
    "CREATE TRIGGER IF NOT EXISTS turns_changed AFTER UPDATE OF items ON turns BEGIN"
    " UPDATE totals SET bytes = bytes + length(NEW.items) - length(OLD.items); END",
    "CREATE TRIGGER IF NOT EXISTS turns_gone AFTER DELETE ON turns BEGIN"
    " UPDATE totals SET turns = turns - 1, bytes = bytes - length(OLD.items); END",
)
# One process: its memory indexes every turn and keeps the bounds, so nothing reads the totals.
# A trigger on every insert and delete also makes each a statement with its own journal: they
# go, and so does the totals row, which workers opening the file later count again.
_ALONE = (*(f"DROP TRIGGER IF EXISTS {name}" for name in _TRIGGERS), "DELETE FROM totals")
_UPSERT = (
    "INSERT INTO turns VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
    " previous = excluded.previous, created = excluded.created, items = excluded.items"
)
_UPSERT_ROWS = _UPSERT.replace("(?, ?, ?, ?)", "{rows}")  # a row's placeholders once a row


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


def open_db(path: Path, shared: bool = True) -> sqlite3.Connection:
    """The file, made private if new, in WAL mode, with the schema (safe from several workers);
    `shared`: written by several workers, which keep its totals (else by one process, which
    does not).

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
            _set_up(conn, shared)
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


def _set_up(conn: sqlite3.Connection, shared: bool) -> None:
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("BEGIN IMMEDIATE")  # workers opening a new file together take turns
    try:
        for statement in (*_SCHEMA, *(_SHARED if shared else _ALONE)):
            conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


CHUNK = 64  # rows a statement writes or deletes: a batch is a few statements, not one a row
_SQL: dict[tuple[str, str, int], str] = {}


def _chunked(conn: sqlite3.Connection, sql: str, row: str, rows: Sequence[Sequence[Any]]) -> None:
    """Run `sql` over `rows`, its `{rows}` written out as `row` (a row's placeholders) once a row,
    CHUNK rows a statement, the rest in powers of two: few distinct statements, each prepared
    once and cached.

    A statement a row would pay, for each row, the sqlite3 module's call, binding and reset and
    SQLite's statement start and end: most of what writing a turn cost."""
    if not rows:
        return
    width = len(rows[0])
    flat = [value for values in rows for value in values]
    start, size, count = 0, CHUNK, len(rows)
    while start < count:
        while size > count - start:
            size //= 2
        text = _SQL.get((sql, row, size))
        if text is None:
            text = _SQL[(sql, row, size)] = sql.format(rows=", ".join([row] * size))
        conn.execute(text, flat[start * width : (start + size) * width])
        start += size


def write(
    conn: sqlite3.Connection,
    turns: list[tuple[str, str, float, bytearray]],
    firsts: list[tuple[str, float, bytearray]],
    items: list[tuple[str, float, bytearray]],
) -> None:
    """File turns (id, previous, created, items), first turns (id, created, items) and named
    items (id, created, item), inside the caller's transaction.

    Blobs come as bytearray and a first turn's missing `previous` is NULL in the statement: the
    sqlite3 module binds str, float and bytearray as they are, but looks for an adapter for
    bytes and None (an attribute lookup that fails, and a formatted error, per value)."""
    _chunked(conn, _UPSERT_ROWS, "(?, ?, ?, ?)", turns)
    _chunked(conn, _UPSERT_ROWS, "(?, NULL, ?, ?)", firsts)
    _chunked(conn, "INSERT OR REPLACE INTO items VALUES {rows}", "(?, ?, ?)", items)


def delete(conn: sqlite3.Connection, ids: list[tuple[str]], items_before: float) -> None:
    """Delete these turns and every item older than `items_before` (inside the caller's
    transaction)."""
    _chunked(conn, "DELETE FROM turns WHERE id IN ({rows})", "?", ids)
    conn.execute("DELETE FROM items WHERE created < ?", (items_before,))


def prune(conn: sqlite3.Connection, before: float) -> None:
    """Delete what was stored before `before` (outlived the TTL)."""
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("DELETE FROM turns WHERE created < ?", (before,))
    conn.execute("DELETE FROM items WHERE created < ?", (before,))
    conn.execute("COMMIT")


def evict_over(conn: sqlite3.Connection, settings: ResponsesSettings) -> float | None:
    """Past store_max_items or store_max_bytes counting every worker's turns: delete the oldest
    (and the items older than the oldest kept); the new watermark, or None when within bounds."""
    row = conn.execute("SELECT turns, bytes FROM totals").fetchone()
    if row is None:  # one process opened the file since (it drops the totals): count again
        for statement in _SHARED:
            conn.execute(statement)
        row = conn.execute("SELECT turns, bytes FROM totals").fetchone()
    count, size = row
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
