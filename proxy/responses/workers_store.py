"""Stored Responses conversations with --workers N: every worker resolves every stored turn.

The workers share DRIFTGATE_HOME/responses.sqlite3. A worker files each turn there before the
end of its answer reaches the client (the respond step awaits `file`), so the client's next
request finds it whichever worker the kernel hands it to. A worker answers from memory the
turns it filed itself, and reads the others from the file on a reader thread (bounded by
READ_SECONDS) before the request is expanded. The bounds count every worker's turns and are
kept in the file (proxy/responses/sqlite_file.py); the watermark it publishes tells a worker
which of the turns it holds some worker has evicted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from driftgate.proxy.responses.settings import ResponsesSettings
from driftgate.proxy.responses.sqlite_file import Watermark, WorkersLive, read_item, read_turn
from driftgate.proxy.responses.store import MEMORY_TURNS, Conversations
from driftgate.proxy.responses.turns import (
    MAX_CHAIN,
    Answered,
    Expanded,
    Loaded,
    Turn,
    item_in,
    previous_of,
    referenced,
)
from driftgate.proxy.responses.writer import Put

WATERMARK_NAME = "responses.evicted"
READ_SECONDS = 5.0  # most a worker waits on the file for turns another worker stored
FILE_SECONDS = 5.0  # most an answer's end waits for its turn to be in the file
_log = logging.getLogger("driftgate.responses")


class WorkerConversations(Conversations):
    """One worker's view of the store all workers share."""

    shared = True  # file before the answer ends: the next request may reach another worker

    def __init__(
        self,
        path: Path,
        settings: ResponsesSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._live = WorkersLive(path)  # before the file is opened: one process keeps off it
        self._watermark = Watermark(path.with_name(WATERMARK_NAME))
        self._reads = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="driftgate-responses-read"
        )
        self.reads = 0  # how many requests read the file (one read each at most)
        super().__init__(path, settings, clock=clock, watermark=self._watermark)

    # -- request side -------------------------------------------------------
    async def load(self, body: dict[str, Any]) -> Loaded | None:
        """The turns and items `body` refers to: this worker's from memory, the rest from the file."""
        previous = previous_of(body)
        refs = referenced(body)
        if previous is None and not refs:
            return None
        # What this worker holds is taken now (its memory may let go of it before the expand).
        loaded = Loaded()
        start: str | None = None
        current, walked = previous, 0
        while current and walked < MAX_CHAIN:
            turn = self._own_turn(current)
            if turn is None:
                start = current
                break
            loaded.turns[current] = turn
            current, walked = turn.previous, walked + 1
        wanted: list[str] = []
        for ref in refs:
            item = self._own_item(ref)
            if item is None:
                wanted.append(ref)
            else:
                loaded.items[ref] = item
        if start is None and not wanted:
            return loaded
        self.reads += 1
        job = self._reads.submit(self._read, loaded, start, MAX_CHAIN - walked, wanted)
        try:
            await asyncio.wait_for(asyncio.wrap_future(job), READ_SECONDS)
        except TimeoutError:
            _log.warning(
                "stored responses unreadable: %s did not answer in %g s", self._path, READ_SECONDS
            )
            loaded.unreachable = f"{self._path} did not answer in {READ_SECONDS:g} s"
        except (sqlite3.Error, OSError) as exc:
            _log.warning("stored responses unreadable (%s): %s", self._path, exc)
            loaded.unreachable = f"{self._path} could not be read: {exc}"
        return loaded

    def _read(self, loaded: Loaded, start: str | None, most: int, wanted: list[str]) -> None:
        """On the reader thread: `start`'s chain and the `wanted` items, fresh ones only."""
        assert self._path is not None
        if self._reader is None:
            self._reader = sqlite3.connect(self._path, check_same_thread=False)
            self._reader.execute("PRAGMA busy_timeout=2000")
        current = start
        while current and most > 0:
            turn = read_turn(self._reader, current)
            if turn is None or not self._fresh(turn.created):
                break
            loaded.turns[current] = turn
            current, most = turn.previous, most - 1
        for item_id in wanted:
            found = read_item(self._reader, item_id)
            if found is not None and self._fresh(found[0]):
                loaded.items[item_id] = found[1]

    def _turn(self, response_id: str, loaded: Loaded | None) -> Turn | None:
        turn = loaded.turns.get(response_id) if loaded is not None else None
        return turn if turn is not None else self._own_turn(response_id)

    def _item(self, item_id: str, loaded: Loaded | None) -> dict[str, Any] | None:
        item = loaded.items.get(item_id) if loaded is not None else None
        return item if item is not None else self._own_item(item_id)

    def _own_turn(self, response_id: str) -> Turn | None:
        """A turn this worker filed and still holds, unless some worker evicted it since."""
        turn = self._turns.get(response_id)
        return turn if turn is not None and self._current(turn.created) else None

    def _own_item(self, item_id: str) -> dict[str, Any] | None:
        """An item of a turn this worker holds, unless some worker evicted the turn since."""
        response_id = self._item_index.get(item_id)
        turn = self._own_turn(response_id) if response_id is not None else None
        return item_in(turn.items, item_id) if turn is not None else None

    def _current(self, created: float) -> bool:
        """Fresh, and not older than what some worker evicted to keep the bounds."""
        return created >= self._watermark.get() and self._fresh(created)

    # -- response side ------------------------------------------------------
    async def file(self, expanded: Expanded, response: Answered) -> None:
        """Keep this turn and wait until the file holds it (every worker can read it then)."""
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        if not self._keep(expanded, response, done):
            return
        try:
            await asyncio.wait_for(asyncio.wrap_future(done), FILE_SECONDS)
        except Exception as exc:  # a filing that failed never costs the answer or its record
            _log.warning("could not store a response for other workers: %s", type(exc).__name__)

    def _filed(
        self,
        response_id: str,
        turn: Turn,
        blob: bytes,
        named: list[str],
        done: concurrent.futures.Future[None] | None,
    ) -> bool:
        """Keep the turn in memory and queue it for the file; the writer keeps the bounds across
        workers. Memory indexes the items of the turns it holds only: the others are the file's."""
        turns, items = self._turns, self._item_index
        turns[response_id] = turn
        for item_id in named:
            items[item_id] = response_id
        if len(turns) > MEMORY_TURNS:  # as in one process: once the file holds the turn
            writer = self._writer
            keep = MEMORY_TURNS if writer is None else MEMORY_TURNS + writer.queued - writer.written
            while len(turns) > keep:
                old_id, old = turns.popitem(last=False)
                for item in old.items:
                    held = item.get("id")
                    if isinstance(held, str) and items.get(held) == old_id:
                        del items[held]
        job = Put(response_id, turn, blob, named, done)
        return self._writer is not None and self._writer.put(job)

    def close(self) -> None:
        """Write what is queued, stop the threads."""
        if self._closed:
            return
        super().close()
        self._reads.shutdown(wait=True)
        self._watermark.close()
        self._live.close()
