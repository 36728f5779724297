"""GET /analytics/stream: live records as server-sent events (metadata only, never content).

Records reach the hub on the recorder's thread and are handed to the loop once per batch, and
only while someone is listening. Each subscriber holds at most `limit` records; one that falls
further behind is told so (`event: dropped`) and disconnected rather than buffered without end.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

from driftgate.proxy.observe.records import RequestRecord

SUBSCRIBER_LIMIT = 1000


class Subscriber:
    """One listener: a bounded buffer of record documents and a wake-up."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buffer: deque[dict[str, Any]] = deque()
        self.overflowed = False
        self.closed = False
        self.wake = asyncio.Event()

    def offer(self, docs: Sequence[dict[str, Any]]) -> bool:
        """Add `docs`; False (and overflowed) when they do not fit."""
        if len(self.buffer) + len(docs) > self.limit:
            self.overflowed = True
            self.wake.set()
            return False
        self.buffer.extend(docs)
        self.wake.set()
        return True

    async def take(self, timeout: float) -> list[dict[str, Any]]:
        """What arrived (waiting up to `timeout` seconds; [] when nothing did)."""
        if not self.buffer and not self.overflowed and not self.closed:
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), timeout)
            except TimeoutError:
                return []
        docs = list(self.buffer)
        self.buffer.clear()
        return docs


class LiveHub:
    """Fans records out to the stream's subscribers (a record sink)."""

    def __init__(self, limit: int = SUBSCRIBER_LIMIT) -> None:
        self._limit = limit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subs: set[Subscriber] = set()
        self._unfed: set[Subscriber] = set()  # streams that read the usage file (workers)
        self.dropped_subscribers = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop the subscribers live on (set at start-up)."""
        self._loop = loop

    @property
    def subscribers(self) -> int:
        """How many clients follow the stream now."""
        return len(self._subs) + len(self._unfed)

    def subscribe(self, fed: bool = True) -> Subscriber:
        """A new listener (on the loop); `fed=False`: one that only learns of the shutdown (its
        records come from elsewhere) and that this process's records are not handed to."""
        sub = Subscriber(self._limit)
        (self._subs if fed else self._unfed).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Forget a listener."""
        self._subs.discard(sub)
        self._unfed.discard(sub)

    def consume(self, records: Sequence[RequestRecord]) -> None:
        """A record sink: hand the batch to the loop, only while someone is listening."""
        loop = self._loop
        if not self._subs or loop is None or loop.is_closed():
            return
        docs = [r.as_json() for r in records]
        try:
            loop.call_soon_threadsafe(self._publish, docs)
        except RuntimeError:  # the loop closed meanwhile
            return

    def _publish(self, docs: list[dict[str, Any]]) -> None:
        for sub in list(self._subs):
            if not sub.offer(docs):
                self._subs.discard(sub)
                self.dropped_subscribers += 1

    def close(self) -> None:
        """End every stream (at shutdown)."""
        for sub in (*self._subs, *self._unfed):
            sub.closed = True
            sub.wake.set()
        self._subs.clear()
        self._unfed.clear()
