"""Stored Responses conversations, for backends that do not keep them (Chat-only, Anthropic).

A request with `store` (true unless the client says false) leaves its conversation items behind
under the response id it was answered with, so a later `previous_response_id` or
`item_reference` resolves. Each response keeps only its own turn (its input items and output)
and the id of the one before it; a chain is walked back when it is read. Writes go to SQLite
(DRIFTGATE_HOME/responses.sqlite3) on a background thread; the most recent turns stay in memory
so the next request of a conversation never waits on, or races, the write. What is kept is
bounded by [responses] (ResponsesSettings): a TTL, a count and a size, the oldest going first.
Items hold conversation content: they are never logged.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from driftgate.proxy.errors import InvalidRequest
from driftgate.proxy.responses.settings import ResponsesSettings

DB_NAME = "responses.sqlite3"
MEMORY_TURNS = 512
MAX_CHAIN = 1_000  # turns walked back from one previous_response_id
PRUNE_EVERY = 100  # expired rows are deleted from SQLite every this many writes
_log = logging.getLogger("driftgate.responses")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    id TEXT PRIMARY KEY, previous TEXT, created REAL NOT NULL, items BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_created ON turns (created);
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY, created REAL NOT NULL, item BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS items_created ON items (created);
"""


@dataclass(slots=True)
class Turn:
    """One stored response: the response before it, and this turn's input and output items."""

    previous: str | None
    created: float
    items: list[dict[str, Any]]


@dataclass(slots=True)
class Expanded:
    """A Responses request with its conversation written out, and what storing it needs."""

    body: dict[str, Any]  # input: the whole conversation; no previous_response_id
    previous: str | None
    own: list[dict[str, Any]]  # this request's own input items (references resolved)
    store: bool
    asked: float = 0.0  # when the request arrived: a stored turn's age counts from here


@dataclass(slots=True)
class _Put:
    """Writer job: one turn and its named items."""

    response_id: str
    turn: Turn
    blob: bytes
    named: list[dict[str, Any]]


@dataclass(slots=True)
class _Evict:
    """Writer job: these turns are gone, and every item older than the oldest turn kept."""

    ids: list[str]
    items_before: float


def not_found(response_id: str) -> InvalidRequest:
    """The 400 OpenAI gives for an unknown previous_response_id."""
    return InvalidRequest(
        f"Previous response with id '{response_id}' not found.",
        code="previous_response_not_found",
        param="previous_response_id",
    )


def item_not_found(item_id: str) -> InvalidRequest:
    """The 400 for an item_reference to an item nobody stored."""
    return InvalidRequest(f"Item with id '{item_id}' not found.", param="input")


def input_items(raw: Any) -> list[dict[str, Any]]:
    """A request's `input` as a list of items (a string is one user message)."""
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    if isinstance(raw, list):
        return [i for i in raw if isinstance(i, dict)]
    return []


class Conversations:
    """The store: expand requests before translation, remember answers after them.

    Which turns exist is known in memory (an index of id, time and size, read from SQLite at
    start-up), so the bounds are kept exactly and an evicted or unknown id costs no read.
    """

    def __init__(
        self,
        path: Path | None,
        settings: ResponsesSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or ResponsesSettings()
        self._clock = clock
        self._path = path
        self._turns: collections.OrderedDict[str, Turn] = collections.OrderedDict()
        self._items: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()
        # Every stored turn (id -> created, bytes) and item (id -> created), oldest first.
        self._index: collections.OrderedDict[str, tuple[float, int]] = collections.OrderedDict()
        self._item_index: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._bytes = 0
        self._reader: sqlite3.Connection | None = None
        self._queue: queue.Queue[_Put | _Evict | None] = queue.Queue(maxsize=10_000)
        self._thread: threading.Thread | None = None
        self._closed = False
        if path is not None:
            self._thread = threading.Thread(
                target=self._run, name="driftgate-responses", daemon=True
            )
            self._load_index(path)  # may queue an eviction for the writer, which starts next
            self._thread.start()

    # -- request side -------------------------------------------------------
    def expand(self, body: dict[str, Any]) -> Expanded:
        """`body` with previous_response_id's conversation and item references written out."""
        previous = body.get("previous_response_id")
        if previous is not None and not isinstance(previous, str):
            raise InvalidRequest(
                "previous_response_id must be a string", param="previous_response_id"
            )
        items = input_items(body.get("input"))
        own = [self._resolve(i) if i.get("type") == "item_reference" else i for i in items]
        history = self._history(previous) if previous else []
        out = {k: v for k, v in body.items() if k != "previous_response_id"}
        out["input"] = history + own
        return Expanded(out, previous or None, own, body.get("store") is not False, self._clock())

    def _history(self, response_id: str) -> list[dict[str, Any]]:
        chain: list[Turn] = []
        current: str | None = response_id
        while current and len(chain) < MAX_CHAIN:
            turn = self._turn(current)
            if turn is None:
                if not chain:
                    raise not_found(response_id)
                break  # an ancestor expired: the conversation starts where the store still has it
            chain.append(turn)
            current = turn.previous
        return [item for turn in reversed(chain) for item in turn.items]

    def _resolve(self, ref: dict[str, Any]) -> dict[str, Any]:
        item_id = ref.get("id")
        if not isinstance(item_id, str):
            raise InvalidRequest("item_reference needs an `id`", param="input")
        created = self._item_index.get(item_id)
        item = None
        if created is not None and self._fresh(created):
            item = self._items.get(item_id)
            if item is None:
                row = self._read("SELECT item FROM items WHERE id = ?", item_id)
                item = orjson.loads(row[0]) if row is not None else None
        if item is None:
            raise item_not_found(item_id)
        return item

    def _turn(self, response_id: str) -> Turn | None:
        known = self._index.get(response_id)
        if known is None or not self._fresh(known[0]):
            return None
        turn = self._turns.get(response_id)
        if turn is not None:
            return turn
        row = self._read("SELECT previous, created, items FROM turns WHERE id = ?", response_id)
        return None if row is None else Turn(row[0], row[1], orjson.loads(row[2]))

    def _fresh(self, created: float) -> bool:
        return self._clock() - created < self.settings.store_ttl_seconds

    def _read(self, sql: str, key: str) -> Any:
        if self._path is None or not self._path.exists():
            return None
        try:
            if self._reader is None:
                self._reader = sqlite3.connect(self._path, check_same_thread=False)
                self._reader.execute("PRAGMA busy_timeout=2000")
            return self._reader.execute(sql, (key,)).fetchone()
        except sqlite3.Error as exc:
            _log.warning("stored responses unreadable: %s", type(exc).__name__)
            return None

    # -- response side ------------------------------------------------------
    def remember(self, expanded: Expanded, response: dict[str, Any]) -> None:
        """Keep this turn under the response's id, unless the client asked not to store it."""
        response_id = response.get("id")
        if not expanded.store or self._closed or not isinstance(response_id, str):
            return
        output = [i for i in response.get("output") or () if isinstance(i, dict)]
        # Its age counts from the request, not from when the answer finished being sent: a
        # client that got the answer cannot see it aged by the time the gateway took to file it.
        turn = Turn(expanded.previous, expanded.asked or self._clock(), expanded.own + output)
        blob = orjson.dumps(turn.items)
        self._turns[response_id] = turn
        if len(self._turns) > MEMORY_TURNS:
            self._turns.popitem(last=False)
        self._add(response_id, turn.created, len(blob))
        named = [i for i in turn.items if isinstance(i.get("id"), str)]
        for item in named:
            self._items[item["id"]] = item
            self._item_index[item["id"]] = turn.created
            self._item_index.move_to_end(item["id"])
        while len(self._items) > MEMORY_TURNS * 8:
            self._items.popitem(last=False)
        self._put(_Put(response_id, turn, blob, named))
        self._evict()

    def _add(self, response_id: str, created: float, size: int) -> None:
        old = self._index.pop(response_id, None)
        if old is not None:
            self._bytes -= old[1]
        self._index[response_id] = (created, size)
        self._bytes += size

    def _evict(self) -> None:
        """Past store_max_items or store_max_bytes: forget the oldest turns (and older items)."""
        cap = self.settings
        gone: list[str] = []
        while self._index and (
            len(self._index) > cap.store_max_items or self._bytes > cap.store_max_bytes
        ):
            response_id, (_, size) = self._index.popitem(last=False)
            self._bytes -= size
            self._turns.pop(response_id, None)
            gone.append(response_id)
        if not gone:
            return
        # An item is as old as the turn that brought it: those older than every kept turn go too.
        before = next(iter(self._index.values()))[0] if self._index else float("inf")
        while self._item_index:
            item_id, created = next(iter(self._item_index.items()))
            if created >= before:
                break
            self._item_index.popitem(last=False)
            self._items.pop(item_id, None)
        self._put(_Evict(gone, before))

    def _put(self, job: _Put | _Evict) -> None:
        if self._thread is None:
            return
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            _log.warning("stored responses: write queue full, a change was kept in memory only")

    def _load_index(self, path: Path) -> None:
        """What an earlier run stored (ids, times, sizes), at start-up; then the bounds apply."""
        if not path.exists():
            return
        try:
            with sqlite3.connect(path) as db:
                turns = db.execute(
                    "SELECT id, created, length(items) FROM turns ORDER BY created"
                ).fetchall()
                items = db.execute("SELECT id, created FROM items ORDER BY created").fetchall()
        except sqlite3.Error as exc:
            _log.warning("stored responses unreadable: %s", type(exc).__name__)
            return
        for response_id, created, size in turns:
            self._add(response_id, created, size or 0)
        for item_id, created in items:
            self._item_index[item_id] = created
        self._evict()

    # -- the writer thread --------------------------------------------------
    def _run(self) -> None:
        assert self._path is not None
        try:
            conn = _open(self._path)
        except (OSError, sqlite3.Error) as exc:
            _log.warning(
                "stored responses are kept in memory only: cannot open %s (%s)", self._path, exc
            )
            return
        ttl = self.settings.store_ttl_seconds
        _prune(conn, self._clock() - ttl)
        written = 0
        while True:
            job = self._queue.get()
            if job is None:
                break
            try:
                with conn:
                    if isinstance(job, _Put):
                        _write(conn, job)
                        written += 1
                    else:
                        conn.executemany("DELETE FROM turns WHERE id = ?", [(i,) for i in job.ids])
                        conn.execute("DELETE FROM items WHERE created < ?", (job.items_before,))
                if written % PRUNE_EVERY == 0:
                    _prune(conn, self._clock() - ttl)
            except sqlite3.Error as exc:
                _log.warning("could not store a response: %s", type(exc).__name__)
        conn.close()

    def close(self) -> None:
        """Write what is queued and stop the writer."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        if self._reader is not None:
            self._reader.close()


def _write(conn: sqlite3.Connection, job: _Put) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO turns VALUES (?, ?, ?, ?)",
        (job.response_id, job.turn.previous, job.turn.created, job.blob),
    )
    conn.executemany(
        "INSERT OR REPLACE INTO items VALUES (?, ?, ?)",
        [(i["id"], job.turn.created, orjson.dumps(i)) for i in job.named],
    )


def _open(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # conversation content: private
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.executescript(_SCHEMA)
    return conn


def _prune(conn: sqlite3.Connection, before: float) -> None:
    """Delete what was stored before `before` (outlived the TTL)."""
    with conn:
        conn.execute("DELETE FROM turns WHERE created < ?", (before,))
        conn.execute("DELETE FROM items WHERE created < ?", (before,))


def open_conversations(
    home: Path,
    settings: ResponsesSettings | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> Conversations:
    """The store in DRIFTGATE_HOME, bounded by [responses]."""
    return Conversations(home / DB_NAME, settings, clock=clock)
