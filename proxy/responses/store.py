"""Stored Responses conversations, for backends that do not keep them (Chat-only, Anthropic).

A request with `store` (true unless the client says false) leaves its conversation items behind
under the response id it was answered with, so a later `previous_response_id` or
`item_reference` resolves. Each response keeps only its own turn (its input items and output)
and the id of the one before it; a chain is walked back when it is read. Writes go to SQLite
(DRIFTGATE_HOME/responses.sqlite3) on a background thread; the most recent turns stay in memory
so the next request of a conversation never waits on, or races, the write. What is kept is
bounded by [responses] (ResponsesSettings): a TTL, a count and a size, the oldest going first.
Items hold conversation content: they are never logged.

This is the store of one process: an index of every stored turn is kept in memory (read from the
file at start-up), so the bounds are kept exactly and an unknown id costs no read. With
--workers N each worker has a `WorkerConversations` (proxy/responses/workers_store.py) on the
same file; with [state] redis_url every gateway has a `RedisConversations`.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from driftgate.proxy.errors import ConfigError, InvalidRequest
from driftgate.proxy.responses.settings import ResponsesSettings
from driftgate.proxy.responses.sqlite_file import Watermark, open_db
from driftgate.proxy.responses.turns import (
    MAX_CHAIN,
    Answered,
    ConversationStore,
    Expanded,
    Loaded,
    Output,
    Turn,
    input_items,
    item_in,
    item_not_found,
    items_blob,
    not_found,
    previous_of,
)
from driftgate.proxy.responses.writer import GATHER_SECONDS, PRUNE_EVERY, Evict, Put, Writer

if TYPE_CHECKING:
    from driftgate.proxy.config import Config

DB_NAME = "responses.sqlite3"
MEMORY_TURNS = 512
_log = logging.getLogger("driftgate.responses")

__all__ = [
    "ConversationStore", "Conversations", "Expanded", "Turn", "input_items", "not_found",
    "open_conversations", "open_store",
]  # fmt: skip


class Conversations:
    """The store: expand requests before translation, remember answers after them."""

    shared = False  # nobody else reads this process's turns: they are filed after the answer

    def __init__(
        self,
        path: Path | None,
        settings: ResponsesSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        watermark: Watermark | None = None,
    ) -> None:
        self.settings = settings or ResponsesSettings()
        self._clock = clock
        self._path = path
        self._turns: collections.OrderedDict[str, Turn] = collections.OrderedDict()
        # Every stored turn (id -> created, bytes, the ids of its named items), in filing order:
        # the oldest go first. An item is found through its turn: item id -> the id of the
        # latest turn that brought it.
        self._index: collections.OrderedDict[str, tuple[float, int, list[str]]] = (
            collections.OrderedDict()
        )
        self._item_index: dict[str, str] = {}
        self._bytes = 0
        self._unpruned = 0  # filings since the index was last looked at for expired turns
        self._reader: sqlite3.Connection | None = None
        self._writer: Writer | None = None
        self._closed = False
        if path is not None:
            # One process: nobody reads the file before the answer ends, so filings may gather
            # for a moment and share a commit. Workers wait for theirs: no gathering there.
            gather = GATHER_SECONDS if watermark is None else 0.0
            self._writer = Writer(path, self.settings, clock, watermark, gather)
            if watermark is None:
                self._load_index(path)  # may queue an eviction for the writer, which starts next
            else:
                _open_now(path)  # before the first request reads it: a file of an older layout
            self._writer.start()

    # -- request side -------------------------------------------------------
    async def load(self, body: dict[str, Any]) -> Loaded | None:
        """Nothing to read ahead: this process knows every turn it stored."""
        return None

    def expand(self, body: dict[str, Any], loaded: Loaded | None = None) -> Expanded:
        """`body` with previous_response_id's conversation and item references written out."""
        previous = previous_of(body)
        items = input_items(body.get("input"))
        own = [self._resolve(i, loaded) if i.get("type") == "item_reference" else i for i in items]
        history = self._history(previous, loaded) if previous else []
        out = body.copy()  # in C, where a comprehension leaving the key out ran in Python
        out.pop("previous_response_id", None)
        out["input"] = history + own
        return Expanded(out, previous, own, body.get("store") is not False, self._clock())

    def _history(self, response_id: str, loaded: Loaded | None) -> list[dict[str, Any]]:
        chain: list[Turn] = []
        current: str | None = response_id
        while current and len(chain) < MAX_CHAIN:
            turn = self._turn(current, loaded)
            if turn is None:
                if not chain:
                    raise not_found(response_id, loaded.unreachable if loaded else None)
                break  # an ancestor expired: the conversation starts where the store still has it
            chain.append(turn)
            current = turn.previous
        return [item for turn in reversed(chain) for item in turn.items]

    def _resolve(self, ref: dict[str, Any], loaded: Loaded | None) -> dict[str, Any]:
        item_id = ref.get("id")
        if not isinstance(item_id, str):
            raise InvalidRequest("item_reference needs an `id`", param="input")
        item = self._item(item_id, loaded)
        if item is None:
            raise item_not_found(item_id, loaded.unreachable if loaded else None)
        return item

    def _item(self, item_id: str, loaded: Loaded | None) -> dict[str, Any] | None:
        """An item is stored as long as the latest turn that brought it is."""
        response_id = self._item_index.get(item_id)
        if response_id is None:
            return None
        turn = self._turn(response_id, loaded)
        return item_in(turn.items, item_id) if turn is not None else None

    def _turn(self, response_id: str, loaded: Loaded | None) -> Turn | None:
        known = self._index.get(response_id)
        if known is None or not self._fresh(known[0]):
            return None
        turn = self._turns.get(response_id)
        if turn is not None:
            return turn
        row = self._read_now("SELECT previous, created, items FROM turns WHERE id = ?", response_id)
        return None if row is None else Turn(row[0], row[1], orjson.loads(row[2]))

    def _fresh(self, created: float) -> bool:
        return self._clock() - created < self.settings.store_ttl_seconds

    def _read_now(self, sql: str, key: str) -> Any:
        """A turn or item the index knows but memory no longer holds."""
        if self._path is None or not self._path.exists():
            return None
        try:
            if self._reader is None:
                self._reader = sqlite3.connect(self._path, check_same_thread=False)
                self._reader.execute("PRAGMA busy_timeout=2000")
            return self._reader.execute(sql, (key,)).fetchone()
        except sqlite3.Error as exc:
            _log.warning("stored responses unreadable (%s): %s", self._path, exc)
            return None

    # -- response side ------------------------------------------------------
    def remember(self, expanded: Expanded, response: Answered) -> None:
        """Keep this turn under the response's id, unless the client asked not to store it."""
        self._keep(expanded, response, None)

    async def file(self, expanded: Expanded, response: Answered) -> None:
        """remember(): in one process nobody else needs the turn before the answer ends."""
        self.remember(expanded, response)

    def _keep(
        self,
        expanded: Expanded,
        response: Answered,
        done: concurrent.futures.Future[None] | None,
    ) -> bool:
        """Keep the turn in memory and queue it for the file; False when it is not kept."""
        if not expanded.store or self._closed:
            return False
        own = expanded.own
        if isinstance(response, Output):  # a stream's: its items' bytes were written already
            response_id: Any = response.response_id
            items = own + response.items
            blob = items_blob(own, response)
        else:  # a whole answer's Response object, read as it is (no Output made of it first)
            response_id = response.get("id")
            if not isinstance(response_id, str):
                return False
            items = own + [i for i in response.get("output") or () if isinstance(i, dict)]
            blob = orjson.dumps(items)
        # Its age counts from the request, not from when the answer finished being sent: a
        # client that got the answer cannot see it aged by the time the gateway took to file it.
        created = expanded.asked or self._clock()
        named: list[str] = []
        for item in items:
            item_id = item.get("id")
            if isinstance(item_id, str):
                named.append(item_id)
        turn = Turn(expanded.previous, created, items)
        return self._filed(response_id, turn, blob, named, done)

    def _filed(
        self,
        response_id: str,
        turn: Turn,
        blob: bytes,
        named: list[str],
        done: concurrent.futures.Future[None] | None,
    ) -> bool:
        """Keep the turn in memory, index it and its items, keep the bounds, and queue the turn
        and what it evicted for the file (one job)."""
        turns, index, items = self._turns, self._index, self._item_index
        old = index.pop(response_id, None)
        if old is not None:  # filed again: its earlier items go unless it brings them again
            turns.pop(response_id, None)  # and it leaves memory in its new filing's place
            self._bytes -= old[1]
            _forget(items, response_id, old[2])
        turns[response_id] = turn
        if len(turns) > MEMORY_TURNS:
            # Its items are found through the file from then on: a turn leaves memory once the
            # file holds it, so memory keeps the filings the writer has not committed yet too.
            writer = self._writer
            keep = MEMORY_TURNS if writer is None else MEMORY_TURNS + writer.queued - writer.written
            while len(turns) > keep:
                turns.popitem(last=False)
        size = len(blob)
        index[response_id] = (turn.created, size, named)
        self._bytes += size
        for item_id in named:
            items[item_id] = response_id
        cap = self.settings
        evicted = None
        if len(index) > cap.store_max_items or self._bytes > cap.store_max_bytes:
            evicted = self._evict()
        self._unpruned += 1
        if self._unpruned >= PRUNE_EVERY:
            self._unpruned = 0
            evicted = self._expire(evicted)
        if self._writer is not None:
            self._writer.put(Put(response_id, turn, blob, named, done, evicted))
        return True

    def _evict(self) -> list[str]:
        """Past store_max_items or store_max_bytes: forget the oldest turns and the items they
        brought last; the ids of the turns the file must delete."""
        cap, index, turns, items = self.settings, self._index, self._turns, self._item_index
        most_items, most_bytes = cap.store_max_items, cap.store_max_bytes
        gone: list[str] = []
        while index and (len(index) > most_items or self._bytes > most_bytes):
            response_id, (_, size, named) = index.popitem(last=False)
            self._bytes -= size
            turns.pop(response_id, None)
            _forget(items, response_id, named)
            gone.append(response_id)
        return gone

    def _expire(self, gone: list[str] | None) -> list[str] | None:
        """Forget the turns at the front of the index that outlived the TTL, and the items they
        brought last; `gone` and their ids (for the file to delete), or None when none expired.

        Turns are indexed in filing order, which is their age's but for the time a request took:
        one that began before the front turn goes once it is at the front."""
        index, turns, items = self._index, self._turns, self._item_index
        before = self._clock() - self.settings.store_ttl_seconds
        expired: list[str] = []
        while index:
            response_id, (created, size, named) = next(iter(index.items()))
            if created > before:  # fresh, as reads count it
                break
            del index[response_id]
            self._bytes -= size
            turns.pop(response_id, None)
            _forget(items, response_id, named)
            expired.append(response_id)
        if not expired:
            return gone
        return expired if gone is None else gone + expired

    def _load_index(self, path: Path) -> None:
        """What an earlier run stored (ids, times, sizes, item ids), at start-up, migrating a file
        of an older layout; then the bounds and the TTL apply."""
        if not path.exists():
            return
        try:
            db = open_db(path, shared=False)
            try:
                turns = db.execute(
                    "SELECT id, created, length(items), named FROM turns ORDER BY created"
                ).fetchall()
            finally:
                db.close()
        except sqlite3.Error as exc:
            _log.warning("stored responses unreadable at start-up (%s): %s", path, exc)
            return
        index, items = self._index, self._item_index
        for response_id, created, size, named in turns:
            ids = orjson.loads(named)
            index[response_id] = (created, size or 0, ids)  # each id once: the table's key
            self._bytes += size or 0
            for item_id in ids:
                items[item_id] = response_id
        cap = self.settings
        evicted = None
        if len(index) > cap.store_max_items or self._bytes > cap.store_max_bytes:
            evicted = self._evict()
        evicted = self._expire(evicted)
        if evicted is not None and self._writer is not None:
            self._writer.put(Evict(evicted))

    def health(self) -> dict[str, Any] | None:
        """Nothing to report for /health: the file is this host's."""
        return None

    def close(self) -> None:
        """Write what is queued and stop the writer."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._writer.stop()
        if self._reader is not None:
            self._reader.close()

    async def aclose(self) -> None:
        """close(), for the app's cleanup."""
        self.close()


def _forget(items: dict[str, str], response_id: str, named: list[str]) -> None:
    """Let go of the items a turn that is gone brought, unless a later turn brought them again."""
    for item_id in named:
        if items.get(item_id) == response_id:
            del items[item_id]


def _open_now(path: Path) -> None:
    """A worker's first open of the file (migrated to this layout if it is older), at start-up;
    if it fails, the writer thread says so when it cannot open it either."""
    with contextlib.suppress(OSError, sqlite3.Error):
        open_db(path).close()


def open_store(config: Config, clock: Callable[[], float] = time.time) -> ConversationStore:
    """Where this gateway keeps conversations: Redis when [state] redis_url is set (every host
    reads it), else the file in DRIFTGATE_HOME (shared by the workers when there are several)."""
    if config.state.redis_url is not None:
        try:  # imported here only, so that without redis_url nothing of redis loads
            from driftgate.proxy.responses.redis_store import RedisConversations
        except ImportError as exc:
            raise ConfigError(
                f"[state] redis_url is set but the Redis client is not installed ({exc.name}): "
                "pip install 'driftgate[redis]', or remove [state] redis_url"
            ) from None
        return RedisConversations(config.state, config.responses, clock=clock)
    if config.worker_processes > 1:
        from driftgate.proxy.responses.workers_store import WorkerConversations

        return WorkerConversations(config.home / DB_NAME, config.responses, clock=clock)
    return open_conversations(config.home, config.responses, clock=clock)


def open_conversations(
    home: Path,
    settings: ResponsesSettings | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> Conversations:
    """The store in DRIFTGATE_HOME, bounded by [responses]."""
    return Conversations(home / DB_NAME, settings, clock=clock)
