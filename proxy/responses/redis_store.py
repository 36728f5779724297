"""Stored Responses conversations in Redis ([state] redis_url): any gateway host resolves them.

A turn is filed in one script call before the answer's end reaches the client, so the client's
next request finds it whichever host it lands on; the same call keeps store_max_items and
store_max_bytes across every gateway (oldest first) and each turn expires store_ttl_seconds
after its request arrived. A request that refers to stored items reads its whole chain in one
script call; a request that refers to none never talks to Redis.

Redis unreachable (a call failed or took longer than [state] timeout_seconds): calls stop at
once and a probe every retry_seconds notices when it is back. With `fail = "open"` requests are
answered with what this gateway holds itself (the turns it filed) and a lookup that misses is
the real API's 400 saying the store was unreachable; with `fail = "closed"` a request that would
read or file a turn gets a 503. Items hold conversation content: they are never logged.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from driftgate.proxy.errors import InvalidRequest
from driftgate.proxy.guard.settings import StateSettings, redact_url
from driftgate.proxy.responses import redis_scripts
from driftgate.proxy.responses.settings import ResponsesSettings
from driftgate.proxy.responses.turns import (
    MAX_CHAIN,
    Answered,
    Expanded,
    Loaded,
    StoreUnavailable,
    Turn,
    input_items,
    item_in,
    item_not_found,
    items_blob,
    not_found,
    output_of,
    previous_of,
    referenced,
)
from driftgate.proxy.upstream.failure_words import in_words

log = logging.getLogger("driftgate.responses")
FAILURES = (RedisError, OSError, asyncio.TimeoutError)
MEMORY_TURNS = 512  # turns this gateway filed, kept to answer from while Redis is unreachable


class RedisConversations:
    """The conversation store every gateway sharing [state] redis_url and key_prefix reads."""

    shared = True

    def __init__(
        self,
        state: StateSettings,
        settings: ResponsesSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert state.redis_url is not None
        self.settings = settings or ResponsesSettings()
        self.url = redact_url(state.redis_url)
        self.fail_open = state.fail == "open"
        self._clock = clock
        self._retry = state.retry_seconds
        self.redis: Redis = Redis.from_url(
            state.redis_url,
            socket_timeout=state.timeout_seconds,
            socket_connect_timeout=state.timeout_seconds,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        p = state.key_prefix
        self._turn_prefix, self._item_prefix = f"{p}resp:t:", f"{p}resp:i:"
        self._bound_keys = [f"{p}resp:order", f"{p}resp:size", f"{p}resp:bytes"]
        self._file = self.redis.register_script(redis_scripts.FILE)
        self._resolve = self.redis.register_script(redis_scripts.RESOLVE)
        self._turns: collections.OrderedDict[str, Turn] = collections.OrderedDict()
        self._items: dict[str, str] = {}  # item id -> the turn in _turns that brought it last
        self.up = True
        self.down_since: float | None = None
        self.error: str | None = None
        # Turns Redis did not take (kept in memory here), filed once it answers again.
        self._unfiled: collections.deque[list[Any]] = collections.deque(maxlen=MEMORY_TURNS)
        self._probe: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- request side -------------------------------------------------------
    async def load(self, body: dict[str, Any]) -> Loaded | None:
        """The chain and items `body` refers to, read from Redis in one call."""
        previous = previous_of(body)
        refs = referenced(body)
        if previous is None and not refs:
            if not self.up and not self.fail_open and body.get("store") is not False:
                raise StoreUnavailable(self._unavailable("store this response"))
            return None
        loaded = Loaded()
        if not self.up:
            loaded.unreachable = self._why()
        else:
            args: list[str | int] = [
                self._turn_prefix, self._item_prefix, previous or "", MAX_CHAIN, *refs
            ]  # fmt: skip
            try:
                chain, blobs = await self._resolve(keys=[], args=args)
            except FAILURES as exc:
                self._lost(exc)
                loaded.unreachable = self._why()
            else:
                self._take(loaded, chain, blobs, refs)
        if loaded.unreachable is not None and not self.fail_open:
            raise StoreUnavailable(
                self._unavailable("read the conversation this request continues")
            )
        return loaded

    def _take(
        self, loaded: Loaded, chain: list[bytes], blobs: list[bytes], refs: list[str]
    ) -> None:
        for k in range(0, len(chain), 4):
            response_id, previous, created, items = chain[k : k + 4]
            turn = Turn(previous.decode() or None, float(created), orjson.loads(items))
            if not self._fresh(turn.created):
                break
            loaded.turns[response_id.decode()] = turn
        for item_id, blob in zip(refs, blobs, strict=True):
            if not blob:
                continue
            for item in orjson.loads(blob):
                if isinstance(item, dict) and item.get("id") == item_id:
                    loaded.items[item_id] = item
                    break

    def expand(self, body: dict[str, Any], loaded: Loaded | None = None) -> Expanded:
        """`body` with previous_response_id's conversation and item references written out."""
        previous = previous_of(body)
        items = input_items(body.get("input"))
        own = [self._item(i, loaded) if i.get("type") == "item_reference" else i for i in items]
        history: list[dict[str, Any]] = []
        if previous:
            chain: list[Turn] = []
            current: str | None = previous
            while current and len(chain) < MAX_CHAIN:
                turn = self._turn(current, loaded)
                if turn is None:
                    if not chain:
                        raise not_found(previous, loaded.unreachable if loaded else None)
                    break  # an ancestor expired: the conversation starts where the store has it
                chain.append(turn)
                current = turn.previous
            history = [item for turn in reversed(chain) for item in turn.items]
        out = body.copy()  # in C, where a comprehension leaving the key out ran in Python
        out.pop("previous_response_id", None)
        out["input"] = history + own
        return Expanded(out, previous, own, body.get("store") is not False, self._clock())

    def _turn(self, response_id: str, loaded: Loaded | None) -> Turn | None:
        if loaded is not None and loaded.unreachable is None:
            return loaded.turns.get(response_id)  # Redis answered: it is the judge
        turn = self._turns.get(response_id)  # Redis could not: what this gateway filed itself
        return turn if turn is not None and self._fresh(turn.created) else None

    def _item(self, ref: dict[str, Any], loaded: Loaded | None) -> dict[str, Any]:
        item_id = ref.get("id")
        if not isinstance(item_id, str):
            raise InvalidRequest("item_reference needs an `id`", param="input")
        item: dict[str, Any] | None = None
        if loaded is not None and loaded.unreachable is None:
            item = loaded.items.get(item_id)
        else:  # Redis could not answer: an item of a turn this gateway filed itself
            turn = self._turns.get(self._items.get(item_id, ""))
            if turn is not None and self._fresh(turn.created):
                item = item_in(turn.items, item_id)
        if item is None:
            raise item_not_found(item_id, loaded.unreachable if loaded else None)
        return item

    def _fresh(self, created: float) -> bool:
        return self._clock() - created < self.settings.store_ttl_seconds

    # -- response side ------------------------------------------------------
    def remember(self, expanded: Expanded, response: Answered) -> None:
        """File this turn in the background (the respond step uses file(), which it awaits)."""
        task = asyncio.get_running_loop().create_task(self.file(expanded, response))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def file(self, expanded: Expanded, response: Answered) -> None:
        """File this turn in Redis (and in memory, for when Redis is unreachable)."""
        if not expanded.store or self._closed:
            return
        output = output_of(response)
        if output is None:
            return
        response_id = output.response_id
        turn = Turn(expanded.previous, expanded.asked or self._clock(), expanded.own + output.items)
        self._turns[response_id] = turn
        named = [i["id"] for i in turn.items if isinstance(i.get("id"), str)]
        items = self._items
        for item_id in named:
            items[item_id] = response_id
        if len(self._turns) > MEMORY_TURNS:  # the oldest goes, with the items only it held
            old_id, old = self._turns.popitem(last=False)
            for item in old.items:
                item_id = item.get("id")
                if isinstance(item_id, str) and items.get(item_id) == old_id:
                    del items[item_id]
        cap = self.settings
        expire_ms = int((turn.created + cap.store_ttl_seconds) * 1000)
        args = [
            self._turn_prefix, self._item_prefix, response_id, turn.previous or "",
            repr(turn.created), expire_ms, items_blob(expanded.own, output), cap.store_max_items,
            cap.store_max_bytes, repr(self._clock() - cap.store_ttl_seconds), *named,
        ]  # fmt: skip
        if not self.up:
            self._unfiled.append(args)
            return
        try:
            await self._file(keys=self._bound_keys, args=args)
        except FAILURES as exc:
            self._lost(exc)
            self._unfiled.append(args)

    async def _refile(self) -> None:
        """Redis answers again: file the turns answered while it did not (oldest first), before
        requests use it again. Raises what Redis raises."""
        while self._unfiled:
            await self._file(keys=self._bound_keys, args=self._unfiled[0])
            self._unfiled.popleft()

    # -- reachability -------------------------------------------------------
    def _why(self) -> str:
        return f"Redis at {self.url} is unreachable ({self.error})"

    def _unavailable(self, what: str) -> str:
        return (
            f"The gateway cannot {what}: its conversation store, {self._why()}, and "
            '[state] fail = "closed". Try again shortly.'
        )

    def _lost(self, exc: BaseException) -> None:
        """Redis did not answer: stop asking it on the request path; probe until it is back."""
        self.error = in_words(exc)[:300]
        if not self.up:
            return
        self.up = False
        self.down_since = self._clock()
        log.warning(
            "stored responses: Redis at %s is unreachable (%s); trying again every %s s",
            self.url,
            self.error,
            self._retry,
        )
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._until_back())

    async def _until_back(self) -> None:
        while True:
            await asyncio.sleep(self._retry)
            try:
                await self.redis.ping()
                await self._refile()
            except FAILURES as exc:
                self.error = in_words(exc)[:300]
                continue
            self.up = True
            self.down_since = None
            log.warning("stored responses: Redis at %s answers again", self.url)
            return

    async def stored(self) -> int:
        """How many responses the store holds (every gateway's); raises when Redis does not answer."""
        return int(await self.redis.zcard(self._bound_keys[0]))

    def health(self) -> dict[str, Any] | None:
        """For /health: where the conversations live and whether Redis answers."""
        doc: dict[str, Any] = {"kind": "redis", "url": self.url, "reachable": self.up}
        if not self.up:
            doc["unreachable_since"] = self.down_since
            doc["error"] = self.error
        if self._unfiled:
            doc["kept_in_memory_only"] = len(self._unfiled)
        return doc

    async def aclose(self) -> None:
        """Stop the probe and close the connections."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._closed = True
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        await self.redis.aclose()
