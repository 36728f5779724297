"""The stored conversations' SQLite file (DRIFTGATE_HOME/responses.sqlite3): its schema, what
is written and read, and the bounds kept across every process that writes it (each process has
one writer thread: proxy/responses/writer.py).

Layout (schema version 2, PRAGMA user_version): a `turns` row per stored response holds its
items once (a JSON blob) and the ids of its named items (`named`, a JSON list). With --workers N
an `items` row maps each named item's id to the turn that holds it (the latest turn that brought
it), so a worker resolves an `item_reference` to an item another worker filed; the row goes with
its turn. One process keeps no `items` rows: its memory indexes every stored item (read from
`named` at start-up). A file of version 1 (an `items` row with the item's bytes again, cut by
age) is migrated when it is opened: its turns are kept, and the items they hold.

With --workers N each worker writes the same file. Totals of the turns table (count, bytes) are
kept by triggers, so a writer sees every worker's turns in one row and evicts the oldest, whoever
filed them, in the transaction that went past a bound. Which turns are gone is published in a
watermark file (every turn created before it was deleted) that workers read before trusting the
turns they hold in memory; an index of the turns by age finds the oldest and the expired. One
process keeps no totals, no item rows and no index by age in the file (its memory indexes every
turn and item, in filing order): it drops the triggers, the totals row, the item rows and the
index, and workers (opening the file later, or writing to it when one process opened it
meanwhile) count the totals, map the items and index the turns again. It drops them only when
no worker is live on the file (each holds a shared lock on `responses.sqlite3.workers` while it
runs): a one-process gateway started on the home of running workers leaves what they rely on
alone (its triggers keep the totals counting its turns too).
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import mmap
import os
import sqlite3
import struct
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from driftgate.proxy.responses.settings import ResponsesSettings
from driftgate.proxy.responses.turns import Turn, item_in

VERSION = 2
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS turns (id TEXT PRIMARY KEY, previous TEXT,"
    " created REAL NOT NULL, items BLOB NOT NULL, named TEXT)",
    "CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY, turn TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS totals ("
    " one INTEGER PRIMARY KEY CHECK (one = 1), turns INTEGER NOT NULL, bytes INTEGER NOT NULL)",
)
_TRIGGERS = ("turns_added", "turns_changed", "turns_gone")
_BY_AGE = "CREATE INDEX IF NOT EXISTS turns_created ON turns (created)"
# With workers: the turns by age (the oldest are evicted, the expired pruned) and the triggers
# keeping the totals (counted, and the items mapped, by _count_again when the totals row is
# missing).
_SHARED = (
    _BY_AGE,
    "CREATE TRIGGER IF NOT EXISTS turns_added AFTER INSERT ON turns BEGIN"
    " UPDATE totals SET turns = turns + 1, bytes = bytes + length(NEW.items); END",
    "CREATE TRIGGER IF NOT EXISTS turns_changed AFTER UPDATE OF items ON turns BEGIN"
    " UPDATE totals SET bytes = bytes + length(NEW.items) - length(OLD.items); END",
    "CREATE TRIGGER IF NOT EXISTS turns_gone AFTER DELETE ON turns BEGIN"
    " UPDATE totals SET turns = turns - 1, bytes = bytes - length(OLD.items); END",
)
_COUNT_AGAIN = (
    *_SHARED,  # the triggers too: a worker counting again after one process dropped them
    "INSERT INTO totals SELECT 1, count(*), coalesce(sum(length(items)), 0) FROM turns",
    "DELETE FROM items",
    # Oldest first: an item a later turn brought again maps to that turn.
    "INSERT OR REPLACE INTO items SELECT j.value, t.id FROM turns t, json_each(t.named) j"
    " WHERE j.type = 'text' ORDER BY t.created",
)
# One process: its memory indexes every turn and item, keeps the bounds and finds the expired
# turns, so nothing reads the totals, the item rows or the turns by age. A trigger on every insert
# and delete also makes each a statement with its own journal, and the index by age is a third
# b-tree each insert and delete changes: they go, and so do the totals row and the item rows,
# which workers opening the file later count, map and index again.
_ALONE = (
    *(f"DROP TRIGGER IF EXISTS {name}" for name in _TRIGGERS),
    "DROP INDEX IF EXISTS turns_created",
    "DELETE FROM totals",
    "DELETE FROM items",
)
_UPSERT = (
    "INSERT INTO turns (id, previous, created, items, named) VALUES {rows} ON CONFLICT (id) DO"
    " UPDATE SET previous = excluded.previous, created = excluded.created,"
    " items = excluded.items, named = excluded.named"
)


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


class WorkersLive:
    """A worker's hold on the file's `.workers` lock (shared, for as long as the worker runs): one
    process opening the file meanwhile leaves the structures the workers keep in it alone."""

    def __init__(self, path: Path) -> None:
        self._fd = _lock_file(path)
        fcntl.flock(self._fd, fcntl.LOCK_SH)  # waits out one process setting up the file

    def close(self) -> None:
        """Let go (closing the descriptor unlocks it; the kernel does that for a killed worker)."""
        os.close(self._fd)


def _lock_file(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path.with_name(path.name + ".workers"), os.O_RDWR | os.O_CREAT, 0o600)


@contextlib.contextmanager
def _alone(path: Path) -> Iterator[bool]:
    """Whether no worker is live on the file (then none starts until the block ends)."""
    fd = _lock_file(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)


# Most a writer retries opening a file other workers are setting up: one of them migrating a
# large file of an earlier layout holds it for seconds (a 264 MB file took 3.9 s on a fast disk).
OPEN_SECONDS = 120.0


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
            if shared:
                _set_up(conn, True, False)
            else:
                with _alone(path) as alone:
                    _set_up(conn, False, alone)
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


def _set_up(conn: sqlite3.Connection, shared: bool, alone: bool) -> None:
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("BEGIN IMMEDIATE")  # workers opening a new file together take turns
    try:
        _migrate(conn)
        for statement in _SCHEMA:
            conn.execute(statement)
        if shared:
            for statement in _SHARED:
                conn.execute(statement)
            if conn.execute("SELECT 1 FROM totals").fetchone() is None:
                count_again(conn)
        elif alone:  # live workers count, map and look up by age in the file: it stays so
            for statement in _ALONE:
                conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _migrate(conn: sqlite3.Connection) -> None:
    """A file of an older layout, brought to this one (inside the caller's transaction): version 1
    kept an `items` row with each named item's bytes again; its turns and their items are kept."""
    if conn.execute("PRAGMA user_version").fetchone()[0] >= VERSION:
        return
    columns = {row[1] for row in conn.execute("PRAGMA table_info(turns)")}
    if columns and "named" not in columns:
        conn.execute("ALTER TABLE turns ADD COLUMN named TEXT NOT NULL DEFAULT '[]'")
        after = -1
        while True:  # a few hundred turns at a time: a file may hold store_max_bytes of items
            rows = conn.execute(
                "SELECT rowid, items FROM turns WHERE rowid > ? ORDER BY rowid LIMIT 500", (after,)
            ).fetchall()
            if not rows:
                break
            conn.executemany(
                "UPDATE turns SET named = ? WHERE rowid = ?",
                [(named_of(_loaded(blob)), rowid) for rowid, blob in rows],
            )
            after = rows[-1][0]
    if "item" in {row[1] for row in conn.execute("PRAGMA table_info(items)")}:
        conn.execute("DROP TABLE items")  # its index goes with it; _SCHEMA makes the new one
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'totals'").fetchone():
            conn.execute("DELETE FROM totals")  # workers count again and map the items
    conn.execute(f"PRAGMA user_version = {VERSION}")


def _loaded(blob: bytes) -> list[Any]:
    try:
        items = orjson.loads(blob)
    except orjson.JSONDecodeError:
        return []
    return items if isinstance(items, list) else []


def named_of(items: Iterable[Any]) -> str:
    """The `named` column of a turn holding `items`: the ids of those that have one, as JSON."""
    ids = [i["id"] for i in items if isinstance(i, dict) and isinstance(i.get("id"), str)]
    return orjson.dumps(ids).decode()


def count_again(conn: sqlite3.Connection) -> None:
    """The totals row, the item rows, the turns by age and the triggers keeping the totals, from
    the turns (inside the caller's transaction): one process kept none of them while it wrote
    the file, and dropped the triggers when it opened it."""
    for statement in _COUNT_AGAIN:
        conn.execute(statement)


CHUNK = 64  # rows a statement writes or deletes: a batch is a few statements, not one a row
_SQL: dict[tuple[str, str, int], str] = {}


def _chunked(conn: sqlite3.Connection, sql: str, row: str, width: int, flat: list[Any]) -> None:
    """Run `sql` over the rows in `flat` (`width` values a row, one after another), its `{rows}`
    written out as `row` (a row's placeholders) once a row, CHUNK rows a statement, the rest in
    powers of two: few distinct statements, each prepared once and cached.

    A statement a row would pay, for each row, the sqlite3 module's call, binding and reset and
    SQLite's statement start and end: most of what writing a turn cost."""
    start, size, count = 0, CHUNK, len(flat) // width
    while start < count:
        while size > count - start:
            size //= 2
        text = _SQL.get((sql, row, size))
        if text is None:
            text = _SQL[(sql, row, size)] = sql.format(rows=", ".join([row] * size))
        conn.execute(text, flat[start * width : (start + size) * width])
        start += size


def write(conn: sqlite3.Connection, turns: list[Any], firsts: list[Any], items: list[str]) -> None:
    """File turns (id, previous, created, items, named, one after another), first turns (id,
    created, items, named) and item rows (item id, turn id: only with workers), inside the
    caller's transaction.

    Blobs come as bytearray and a first turn's missing `previous` is NULL in the statement: the
    sqlite3 module binds str, float and bytearray as they are, but looks for an adapter for
    bytes and None (an attribute lookup that fails, and a formatted error, per value)."""
    _chunked(conn, _UPSERT, "(?, ?, ?, ?, ?)", 5, turns)
    _chunked(conn, _UPSERT, "(?, NULL, ?, ?, ?)", 4, firsts)
    _chunked(conn, "INSERT OR REPLACE INTO items VALUES {rows}", "(?, ?)", 2, items)


def delete(conn: sqlite3.Connection, ids: list[str]) -> None:
    """Delete these turns (one process: no item rows to go with them), inside the caller's
    transaction."""
    _chunked(conn, "DELETE FROM turns WHERE id IN ({rows})", "?", 1, ids)


def _forget_items(conn: sqlite3.Connection, gone: Iterable[tuple[str, str]]) -> None:
    """Delete the item rows of these deleted turns (id, named), unless a later turn brought the
    item again (its row names that turn)."""
    conn.executemany(
        "DELETE FROM items WHERE id = ? AND turn = ?",
        [(item_id, turn) for turn, named in gone for item_id in orjson.loads(named)],
    )


def prune(conn: sqlite3.Connection, before: float, shared: bool = False) -> None:
    """Delete what was stored before `before` (outlived the TTL), with workers their item rows
    (one process, whose file has no index by age, prunes this way at start-up only: then its
    memory finds the expired turns)."""
    conn.execute("BEGIN IMMEDIATE")
    if shared:
        gone = conn.execute(
            "DELETE FROM turns WHERE created < ? RETURNING id, named", (before,)
        ).fetchall()
        _forget_items(conn, gone)
    else:
        conn.execute("DELETE FROM turns WHERE created < ?", (before,))
    conn.execute("COMMIT")


def evict_over(conn: sqlite3.Connection, settings: ResponsesSettings) -> float | None:
    """Past store_max_items or store_max_bytes counting every worker's turns: delete the oldest
    and their item rows; the new watermark, or None when within bounds."""
    row = conn.execute("SELECT turns, bytes FROM totals").fetchone()
    if row is None:  # one process opened the file since (it drops the totals): count again
        count_again(conn)
        row = conn.execute("SELECT turns, bytes FROM totals").fetchone()
    count, size = row
    if count <= settings.store_max_items and size <= settings.store_max_bytes:
        return None
    gone: list[tuple[str, str]] = []
    last = 0.0
    for response_id, length, created, named in conn.execute(
        "SELECT id, length(items), created, named FROM turns ORDER BY created"
    ):
        if count <= settings.store_max_items and size <= settings.store_max_bytes:
            break
        gone.append((response_id, named))
        count, size, last = count - 1, size - length, created
    conn.executemany("DELETE FROM turns WHERE id = ?", [(response_id,) for response_id, _ in gone])
    _forget_items(conn, gone)
    return math.nextafter(last, math.inf)


def read_turn(conn: sqlite3.Connection, response_id: str) -> Turn | None:
    """One stored turn from the file, or None."""
    row = conn.execute(
        "SELECT previous, created, items FROM turns WHERE id = ?", (response_id,)
    ).fetchone()
    return None if row is None else Turn(row[0], row[1], orjson.loads(row[2]))


def read_item(conn: sqlite3.Connection, item_id: str) -> tuple[float, dict[str, Any]] | None:
    """One stored item (when its turn was stored, the item) from the file, or None (with
    workers: one process keeps no item rows)."""
    row = conn.execute(
        "SELECT t.created, t.items FROM items i JOIN turns t ON t.id = i.turn WHERE i.id = ?",
        (item_id,),
    ).fetchone()
    if row is None:
        return None
    item = item_in(orjson.loads(row[1]), item_id)
    return None if item is None else (row[0], item)
