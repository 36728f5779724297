"""The guard's state in Redis ([state] redis_url): one budget for every gateway that shares it.

A request reserves its estimated cost in one script call (reclaim expired reservations, check
the halt, check each budget's window plus what is in flight, reserve) before it is forwarded;
the requests that ask during the same turn of the event loop share that call, which answers each
as if it had come alone, in order, and up to MAX_CALLS calls are out at once. Settlements are
queued by the recorder's thread and ride along with the next reservation call, or are sent in a
batch of their own when none comes within SETTLE_DELAY; a batch goes summed, as the embedded store
writes it: one amount per backend and time, one per lease it gives back to, and only the ids of
requests reserved one by one (not drawn from a lease), so Redis's work for a batch does not grow
with the requests drawn from leases. With M gateways and R requests in
flight, spend exceeds a budget by at most what those R reservations underestimate. Reservations
expire, so a gateway killed mid-request leaks nothing past `reservation_seconds`. Every
reservation and every batch of settlements has an id made here, and a batch whose call failed is
sent again as it was, so a call sent again after its reply was lost holds or counts nothing twice.

Under concurrency a call also asks for a lease: a slice of the budget held in Redis like a
reservation, from which this gateway admits requests itself, with no round trip, for
`lease_seconds` at most (redis_leases). Redis judges a request only once this gateway's lease is
given back or known, so a lease never refuses what the budget has room for; it holds every request
drawn from it until that request settles, so the bound above counts leases as reservations.

When a call fails or takes longer than `timeout_seconds`, Redis counts as unreachable: requests
are answered at once without trying it (the guard fails open or closed) and one probe every
`retry_seconds` notices when it is back. Settlements wait in memory meanwhile and are sent then.
Only this module imports `redis`, and only when redis_url is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError

from driftgate.proxy.guard import redis_scripts
from driftgate.proxy.guard.ledger import TOTAL, Halt, Limit
from driftgate.proxy.guard.redis_lane import Arg, ScriptLane, bulks, command
from driftgate.proxy.guard.redis_lane import supported as lane_supported
from driftgate.proxy.guard.redis_leases import (
    ALL,
    LEASE_SECONDS,
    LeaseAsk,
    Leases,
    Leasing,
    add_give,
)
from driftgate.proxy.guard.settings import StateSettings, redact_url
from driftgate.proxy.guard.state import NO_RESERVATION, Refusal, Snapshot, StoreUnreachable
from driftgate.proxy.shared.redis_eviction import FIX as EVICTION_FIX
from driftgate.proxy.shared.redis_eviction import eviction_risk
from driftgate.proxy.upstream.failure_words import in_words

log = logging.getLogger("driftgate.guard")
FAILURES = (RedisError, OSError, asyncio.TimeoutError)
MAX_PENDING = 100_000  # settlements kept while Redis is unreachable; the oldest go first
BATCH = 500  # settlements per script call
# id, backend, usd, ts, and the lease it gives back to with how much (None: looked up when sent)
Settlement = tuple[int, str, float, float, tuple[int, float] | None]
MAX_CALLS = 2  # RESERVE calls out at once (the asks meanwhile wait for the next)
# Seconds a settlement waits for a reservation call to carry it before it is sent on its own:
# under leases (few reservation calls) the settlements' own calls, one per this many seconds.
SETTLE_DELAY = 0.01


def _who(backend: str) -> str:
    return "total" if backend == TOTAL else f"b:{backend}"


def _num(value: float) -> str:
    return repr(float(value))


class RedisGuardStore:
    """Spend windows, reservations and the halt in Redis, shared by every gateway using it."""

    kind = "redis"

    def __init__(
        self,
        settings: StateSettings,
        limits_for: Callable[[str], tuple[Limit, ...]],
        wall: Callable[[], float] = time.time,
        leasing: Leasing = "busy",
        lease_seconds: float = LEASE_SECONDS,
        max_pending: int = MAX_PENDING,
    ) -> None:
        """`leasing`: take budget leases when requests ask concurrently ("busy"), for every
        reservation ("always", for tests), or never (one round trip per request); each lease is
        drawn from for `lease_seconds` at most."""
        assert settings.redis_url is not None
        self.url = redact_url(settings.redis_url)
        self._limits_for = limits_for
        self._wall = wall  # when Redis went away (for /health)
        self._ttl = settings.reservation_seconds
        self._retry = settings.retry_seconds
        # A dead Redis must cost a request one short timeout, after which the probe (not the
        # request path) finds out when it is back: no retry after a timeout. A connection that
        # broke while idle (Redis restarted) is retried once at once, on a new connection.
        self.redis: Redis = Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.timeout_seconds,
            socket_connect_timeout=settings.timeout_seconds,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        p = settings.key_prefix
        self._resv, self._info = f"{p}resv", f"{p}resv:info"
        self._held, self._sums, self._halt = f"{p}held", f"{p}sums", f"{p}halt"
        self._windows, self._settled = f"{p}windows", f"{p}settled"
        self._spend = f"{p}spend:"  # + "total:3600", "b:NAME:86400": one window list
        self._settle_keys = [
            self._resv, self._info, self._held, self._sums, self._windows, self._settled
        ]  # fmt: skip
        self._reserve_keys = [
            self._resv, self._info, self._held, self._sums, self._halt, self._windows,
            self._settled,
        ]  # fmt: skip
        # Reservation and settlement ids, unique across gateways (a random start per process), so
        # a call sent again after its reply was lost changes nothing twice. next() on a count is
        # atomic, and settle() runs on the recorder's thread.
        self._ids = itertools.count(secrets.randbits(52) << 10 | 1)
        # EVALSHA with the script's digest; redis-py loads it once when Redis does not know it.
        self._reserve = self.redis.register_script(redis_scripts.RESERVE)
        # Reservations, the request path's round trip, go on a lane of their own (not TLS).
        self._lane = (
            ScriptLane(settings.redis_url, settings.timeout_seconds)
            if lane_supported(settings.redis_url)
            else None
        )
        head: list[Arg] = ["EVALSHA", self._reserve.sha, len(self._reserve_keys)]
        self._reserve_head = bulks([*head, *self._reserve_keys])
        self._reserve_head_count = len(head) + len(self._reserve_keys)
        self._settle = self.redis.register_script(redis_scripts.SETTLE)
        head = ["EVALSHA", self._settle.sha, len(self._settle_keys)]
        self._settle_head = bulks([*head, *self._settle_keys])
        self._settle_head_count = len(head) + len(self._settle_keys)
        self._snapshot = self.redis.register_script(redis_scripts.SNAPSHOT)
        self._resume = self.redis.register_script(redis_scripts.RESUME)
        # Each backend's budgets as the scripts read them, encoded once (the hot path only joins).
        self._specs: dict[tuple[str, tuple[Limit, ...]], tuple[bytes, bytes]] = {}
        self._asks: list[_Ask] = []
        self._asking = 0  # RESERVE calls out
        self._settle_windows: dict[str, list[tuple[str, int]]] = {}
        self._settle_specs: dict[str, bytes] = {}
        self.up = True
        self.down_since: float | None = None
        self.error: str | None = None
        self.lost_settlements = 0
        self.eviction: str | None = None  # what Redis may evict of the guard's keys (None: nothing)
        self._max_pending = max_pending
        self._pending: deque[Settlement] = deque()
        # Settlements dropped past max_pending, from any thread, until the loop's thread finds
        # the leases they gave back to; those give-backs then wait in `_gives` (lease id -> usd,
        # ALL: everything), one per lease however many were dropped, and go with the next batch.
        self._dropped: deque[Settlement] = deque()
        self._gives: dict[int, float] = {}
        self._unsent: deque[_Batch] = deque()  # batches whose call failed: sent again as they are
        self.leases = Leases(
            leasing, lease_seconds, lambda: next(self._ids), self._give_back_to_lease
        )
        # A call that asks for a lease is the only one out: no request is ever judged in Redis
        # while a lease of this gateway's is held there without the gateway knowing.
        self._lease_call = False
        self._busy = False  # requests asked together since the last lease was asked for
        self._scheduled = False
        self._delayed: asyncio.TimerHandle | None = None
        self._flushing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._probe: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def budgets(self, limits_for: Callable[[str], tuple[Limit, ...]]) -> None:
        """A reload changed the budgets: settlements add to the windows the new ones read."""
        self._limits_for = limits_for
        self._settle_windows = {}
        self._settle_specs = {}
        self._specs = {}
        self.leases.give_up_all()  # granted against the old budgets
        if self.up and not self._closed and self._loop is not None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:  # not on the loop: the next connect reads it
                return
            self._spawn(self._check_eviction())  # a policy fixed meanwhile clears the warning

    def window_key(self, limit: Limit) -> str:
        """The list holding the settled spend that `limit` reads."""
        return f"{self._spend}{_who(limit.backend)}:{int(limit.window)}"

    def _spec(self, backend: str, limits: tuple[Limit, ...]) -> tuple[bytes, bytes]:
        """The backend's name and its limits as RESERVE reads them (encoded once)."""
        got = self._specs.get((backend, limits))
        if got is None:
            lines = [f"{_who(x.backend)}\t{int(x.window)}\t{_num(x.usd)}" for x in limits]
            got = self._specs[(backend, limits)] = (backend.encode(), "\n".join(lines).encode())
            kept = self._windows_of(backend)
            for x in limits:  # spend a budget reads is spend kept
                if (_who(x.backend), int(x.window)) not in kept:
                    kept.append((_who(x.backend), int(x.window)))
                    self._settle_specs.pop(backend, None)
        return got

    def _windows_of(self, backend: str) -> list[tuple[str, int]]:
        """The windows a settlement of `backend` adds to: those its budgets read."""
        windows = self._settle_windows.get(backend)
        if windows is None:
            windows = self._settle_windows[backend] = [
                (_who(x.backend), int(x.window)) for x in self._limits_for(backend)
            ]
        return windows

    def _settle_spec(self, backend: str) -> bytes:
        spec = self._settle_specs.get(backend)
        if spec is None:
            lines = [f"{who}\t{seconds}" for who, seconds in self._windows_of(backend)]
            spec = self._settle_specs[backend] = "\n".join(lines).encode()
        return spec

    async def start(self) -> None:
        """Bind to the app's loop and say at once whether Redis answers."""
        self._loop = asyncio.get_running_loop()
        try:
            await self.redis.ping()
        except FAILURES as exc:
            self._lost(exc)
            return
        await self._check_eviction()

    async def eviction_now(self) -> str | None:
        """What Redis may evict of the guard's keys, read now (None: nothing, or not known: INFO
        refused by an ACL, or Redis gone again)."""
        try:
            return eviction_risk(await self.redis.info("memory"))
        except FAILURES:
            return None

    async def _check_eviction(self) -> None:
        """Read whether Redis may evict the guard's keys; say so once when that changes."""
        risk = await self.eviction_now()
        if risk is not None and risk != self.eviction:
            log.warning("spend guard: %s; %s", risk, EVICTION_FIX)
        self.eviction = risk

    async def admit(
        self, backend: str, usd: float, limits: tuple[Limit, ...], now: float, respect_halt: bool
    ) -> int | Refusal | Halt:
        if not self.up:
            raise StoreUnreachable(self.error)
        ticket = next(self._ids)
        if self.leases.draw(ticket, backend, usd, limits, now):
            return ticket  # within this gateway's slice of the budget: no round trip
        loop = self._loop
        if loop is None:  # made by a reload, after the app's start-up
            loop = self._loop = asyncio.get_running_loop()
        answer: asyncio.Future[int | Refusal | Halt] = loop.create_future()
        self._asks.append(_Ask(ticket, backend, usd, limits, respect_halt, now, answer))
        # With nothing out, the first request's call goes now. Those asking after it in this
        # turn of the loop, or while calls are out, share the next call: under load a call
        # carries many; alone, a request waits for none.
        if len(self._asks) == 1:
            lane = self._lane
            ready = lane is not None and lane.ready
            if ready and self._asking == 0:
                self._send_asks()
            elif self._asking < (MAX_CALLS if ready else 1):  # (re)connecting: one call at a time
                loop.call_soon(self._send_asks)
        return await answer

    def _send_asks(self) -> None:
        """One script call for the asks waiting (and the settlements): on the lane when it is
        connected, with no task; else on a task that connects it first (or on redis-py)."""
        if self._lease_call:  # the asks wait for the lease it may grant
            return
        asks, self._asks = self._draw_waiting(self._asks), []
        if not asks:
            return
        if not self.up or self._closed:  # the call before them failed: so do they, at once
            for ask in asks:
                if not ask.answer.done():
                    ask.answer.set_exception(StoreUnreachable(self.error))
            return
        # Requests asking together, or while a call is out, want a lease: asked for in the next
        # call sent with none out.
        busy = self._busy or len(asks) > 1 or self._asking > 0
        leases: list[LeaseAsk] = []
        if self._asking == 0:
            for ask in asks:
                want = self.leases.wanted(ask.backend, ask.usd, ask.limits, busy)
                if want is not None:
                    leases.append(want)
            busy = False
        self._busy = busy
        self._lease_call = bool(leases)
        self._asking += 1
        now = max(ask.now for ask in asks)
        # The settlements waiting ride along: one call instead of two, and the reservations see
        # the latest spend.
        batch = self._take()
        wall = self._wall()
        args: list[bytes | str | int] = [
            self._spend, _num(now), _num(now + self._ttl), _num(wall), _num(wall + self._ttl),
            0 if batch is None else len(batch.args), len(leases),
            _num(now + self.leases.seconds + self._ttl),
        ]  # fmt: skip
        if batch is not None:
            args += batch.args
        for want in leases:
            name, limits = self._spec(want.backend, want.limits)
            args += (want.id, name, limits, _num(want.usd), _num(want.least))
        for ask in asks:
            name, limits = self._spec(ask.backend, ask.limits)
            args += (ask.ticket, _num(ask.usd), name, b"1" if ask.respect_halt else b"0", limits)
        call = _Call(asks, leases, batch, args, now)
        lane = self._lane
        if lane is not None and lane.ready:
            lane.call(self._reserve_command(args), lambda reply: self._replied(call, reply))
        else:
            self._spawn(self._reserve_slowly(call))

    def _reserve_command(self, args: list[Arg]) -> bytes:
        return command(self._reserve_head, self._reserve_head_count, args)

    def _replied(self, call: _Call, reply: Any) -> None:
        if not self._closed and (
            isinstance(reply, NoScriptError)
            or (isinstance(reply, RedisConnectionError) and self.up)
        ):
            # Redis forgot the script (a restart), or the connection broke (a restart, a reply
            # lost on the way): once more, on a new connection; the ids make a repeat harmless.
            self._spawn(self._reserve_slowly(call))
            return
        self._answered(call, reply)

    async def _reserve_slowly(self, call: _Call) -> None:
        """The call when the lane must (re)connect or load the script first, or on redis-py."""
        reply: Any
        try:
            if self._lane is None:
                reply = await self._reserve(keys=self._reserve_keys, args=call.args)
            else:
                reply = await self._lane.ask(self._reserve_command(call.args))
                if isinstance(reply, NoScriptError):
                    await self.redis.script_load(redis_scripts.RESERVE)
                    reply = await self._lane.ask(self._reserve_command(call.args))
        except FAILURES as exc:
            reply = exc
        self._answered(call, reply)

    def _answered(self, call: _Call, reply: Any) -> None:
        """Each request's future gets its answer, or the failure; leases granted are kept."""
        self._asking -= 1
        asks = call.asks
        if call.leases:
            self._lease_call = False
        if self._asks and not self._closed and self._loop is not None:
            self._loop.call_soon(self._send_asks)
        if isinstance(reply, BaseException):
            # Sent again later as it was: counted once all the same.
            if call.batch is not None:
                self._unsent.appendleft(call.batch)
            self._lost(reply)
            self.leases.granted(call.leases, None, call.now, None)  # any granted goes back
            for ask in asks:
                # The script may have run with its reply lost: give back what it may hold.
                self._queue((ask.ticket, ask.backend, 0.0, 0.0, None))
                if not ask.answer.done():
                    ask.answer.set_exception(StoreUnreachable(self.error))
            return
        if call.leases:
            loop = None if self._closed or not self.up else self._loop
            self.leases.granted(call.leases, reply[len(asks) :], call.now, loop)
            reply = reply[: len(asks)]
        for ask, answer in zip(asks, reply, strict=True):
            got = _answer(answer, ask)
            if ask.answer.done():  # its request is gone (the client hung up): give it back
                if isinstance(got, int):
                    self.release(got, ask.backend)
                continue
            ask.answer.set_result(got)

    def _draw_waiting(self, asks: list[_Ask]) -> list[_Ask]:
        """Answer the waiting asks that fit a lease (granted since they asked); the rest, in
        order, go to Redis, with the lease they did not fit given back before them."""
        sent: list[_Ask] = []
        for ask in asks:
            if ask.answer.done():  # its request is gone: nothing to hold
                continue
            if self.leases.draw(ask.ticket, ask.backend, ask.usd, ask.limits, ask.now):
                ask.answer.set_result(ask.ticket)
            else:
                sent.append(ask)
        return sent

    def _give_back_to_lease(self, lease_id: int, usd: float) -> None:
        self._pending.append((NO_RESERVATION, "", 0.0, 0.0, (lease_id, usd)))
        if self._loop is not None and not self._closed:
            self._kick()

    def _take(self) -> _Batch | None:
        """The next batch to send: one whose call failed, else up to BATCH pending settlements
        summed (the loop's thread: leases are counted only there)."""
        if self._unsent:
            return self._unsent.popleft()
        if self._dropped:
            self._drop()
        pending = self._pending
        count = min(BATCH, len(pending))
        if count == 0 and not self._gives:
            return None
        settled = self.leases.settled
        ids: list[Arg] = []  # reserved one by one: each reservation goes
        spend: dict[tuple[str, float], float] = {}  # (backend, ts) -> usd
        # lease id -> usd given back to it (ALL: everything)
        gives, self._gives = self._gives, {}
        for _ in range(count):
            ticket, backend, usd, ts, lease = pending.popleft()
            if lease is None:
                lease = settled(ticket)
            if lease is not None:
                add_give(gives, lease)
            elif ticket != NO_RESERVATION:
                ids.append(ticket)
            if usd > 0:
                spend[backend, ts] = spend.get((backend, ts), 0.0) + usd
        # Only what adds or gives back needs the batch's id (kept in `settled`): a reservation
        # goes once however often its release is sent.
        args: list[Arg] = [
            next(self._ids) if spend or gives else b"",
            len(ids),
            len(spend),
            len(gives),
            *ids,
        ]
        for (backend, ts), usd in spend.items():
            args += (self._settle_spec(backend), _num(ts), _num(usd))
        for lease_id, back in gives.items():
            args += (lease_id, b"*" if back == ALL else _num(back))
        return _Batch(args, count)

    def _drop(self) -> None:
        """The loop's thread: the settlements dropped still give back to their leases (their
        spend is lost, and counted), so a lease's last request still gives it all back."""
        dropped, gives, settled = self._dropped, self._gives, self.leases.settled
        while dropped:
            ticket, _, _, _, lease = dropped.popleft()
            if lease is None:
                lease = settled(ticket)
            if lease is not None:
                add_give(gives, lease)

    def settle(self, ticket: int, backend: str, usd: float, now: float) -> None:
        self._queue((ticket, backend, usd, now, None))

    def settle_many(self, settled: Sequence[tuple[int, str, float, float]]) -> None:
        for ticket, backend, usd, now in settled:
            self._queue((ticket, backend, usd, now, None))

    def settle_at(self, settled: Sequence[tuple[Sequence[Any], float | None]], now: float) -> None:
        """`settle_many` of (ticket, usd or None) pairs, all at `now` (a ticket's first two items
        are its id and backend), as the guard hands them over: no list made for the batch."""
        for ticket, usd in settled:
            self._queue((ticket[0], ticket[1], usd or 0.0, now, None))

    def release(self, ticket: int, backend: str) -> None:
        if ticket != NO_RESERVATION:
            self._queue((ticket, backend, 0.0, 0.0, None))

    def _queue(self, item: Settlement) -> None:
        """From any thread: keep the settlement and have the loop send it (one wake-up a batch)."""
        pending = self._pending
        pending.append(item)
        if len(pending) > self._max_pending:
            self._dropped.append(pending.popleft())
            self.lost_settlements += 1
        if not self._scheduled and self._loop is not None:
            self._scheduled = True
            try:
                self._loop.call_soon_threadsafe(self._kick)
            except RuntimeError:  # the loop is closed: close() sends what is left
                self._scheduled = False

    def _kick(self) -> None:
        """Settlements are waiting: send them in a moment, unless a reservation takes them first."""
        self._scheduled = False
        if self._dropped:
            self._drop()
        if self._delayed is None and self._loop is not None and not self._closed:
            self._delayed = self._loop.call_later(SETTLE_DELAY, self._kick_now)

    def _kick_now(self) -> None:
        self._delayed = None
        waiting = self._pending or self._unsent or self._gives or self._dropped
        if not self._flushing and self.up and waiting and not self._closed:
            self._spawn(self._flush())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        """Send the pending settlements, BATCH a script call; on a failure keep them for later."""
        self._flushing = True
        try:
            while self.up:
                batch = self._take()
                if batch is None:
                    break
                try:
                    await self._send(batch)
                except FAILURES as exc:
                    self._unsent.appendleft(batch)
                    self._lost(exc)
                    return
        finally:
            self._flushing = False
        if (self._pending or self._unsent or self._gives or self._dropped) and self.up:
            self._kick()

    async def _send(self, batch: _Batch) -> None:
        # Ids are remembered as long as a reservation lives: a batch sent again within that time
        # (its reply lost, or Redis away meanwhile) is counted once.
        now = self._wall()
        args: list[Arg] = [self._spend, _num(now), _num(now + self._ttl), *batch.args]
        lane = self._lane
        if lane is None:
            await self._settle(keys=self._settle_keys, args=args)
            return
        packed = command(self._settle_head, self._settle_head_count, args)
        try:
            reply = await lane.ask(packed)
        except RedisConnectionError:
            if self._closed:
                raise
            # A connection broken while idle (a restart), or a reply lost on the way: once more,
            # on a new connection; the ids make a repeat harmless.
            reply = await lane.ask(packed)
        if isinstance(reply, NoScriptError):
            await self.redis.script_load(redis_scripts.SETTLE)
            reply = await lane.ask(packed)
        if isinstance(reply, Exception):
            raise reply

    def halt(self, halt: Halt) -> None:
        self.leases.give_up_all()  # this gateway's next requests ask Redis, and see the halt
        self._spawn(self._write_halt(halt))

    async def _write_halt(self, halt: Halt) -> None:
        until = "" if halt.until is None else _num(halt.until)
        try:
            await self.redis.hset(
                self._halt,
                mapping={"reason": halt.reason, "since": _num(halt.since), "until": until},
            )
        except FAILURES as exc:
            self._lost(exc)
            log.error("spend guard: the halt could not be written to Redis: %s", halt.reason)

    async def resume(self, now: float) -> None:
        await self._call(self._resume, [self._halt, self._sums, self._windows], [])

    async def halted(self, now: float) -> Halt | None:
        return (await self.snapshot((), now)).halt

    async def snapshot(self, limits: tuple[Limit, ...], now: float) -> Snapshot:
        keys = [self.window_key(x) for x in limits]
        args = [a for x in limits for a in (_who(x.backend), str(int(x.window)))]
        fixed = [self._resv, self._info, self._held, self._sums, self._halt]
        reply = await self._call(self._snapshot, [*fixed, *keys], [_num(now), *args])
        halt = _halt(reply[0], reply[1], reply[2]) if reply[3] == b"1" else None
        spent = {x: float(v) for x, v in zip(limits, reply[5:], strict=True)}
        return Snapshot(spent, max(0.0, float(reply[4])), halt)

    async def _call(self, script: Any, keys: list[str], args: list[str]) -> Any:
        if not self.up:
            raise StoreUnreachable(self.error)
        try:
            return await script(keys=keys, args=args)
        except FAILURES as exc:
            self._lost(exc)
            raise StoreUnreachable(self.error) from None

    def health(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"kind": "redis", "url": self.url, "reachable": self.up}
        if not self.up:
            doc["unreachable_since"] = self.down_since
            doc["error"] = self.error
        doc["pending_settlements"] = len(self._pending) + sum(b.settlements for b in self._unsent)
        if self.lost_settlements:
            doc["lost_settlements"] = self.lost_settlements
        if self.eviction is not None:
            doc["eviction"] = self.eviction
        return doc

    def _lost(self, exc: BaseException) -> None:
        """Redis did not answer: stop asking it on the request path; probe until it is back."""
        self.error = in_words(exc)[:300]
        was_up, self.up = self.up, False
        self.leases.give_up_all()  # sent once Redis answers again (they expire there meanwhile)
        if self._lane is not None:
            self._lane.close()  # calls out fail now; a new connection once Redis answers again
        if not was_up:
            return
        self.down_since = self._wall()
        log.warning(
            "spend guard: Redis at %s is unreachable (%s); trying again every %s s",
            self.url,
            self.error,
            self._retry,
        )
        if self._closed or self._loop is None:
            return
        if self._probe is None or self._probe.done():
            self._probe = self._loop.create_task(self._until_back())

    async def _until_back(self) -> None:
        while True:
            await asyncio.sleep(self._retry)
            try:
                await self.redis.ping()
            except FAILURES as exc:
                self.error = in_words(exc)[:300]
                continue
            self.up = True
            self.down_since = None
            log.warning("spend guard: Redis at %s answers again", self.url)
            self._kick()
            await self._check_eviction()  # a Redis restarted may have another configuration
            return

    async def flush(self) -> None:
        """Wait for the calls on their way, and send the settlements still pending."""
        while (
            self._tasks
            or self._asking
            or self._asks
            or (self.up and (self._pending or self._unsent or self._gives or self._dropped))
        ):
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            elif self._asking or self._asks:
                await asyncio.sleep(0.001)  # calls on the lane: answered from data_received
            elif not self._flushing:
                await self._flush()
            else:
                await asyncio.sleep(0)

    async def close(self) -> None:
        """Send what is pending (if Redis answers), then close the connections.

        Nothing of the store's outlives it: no probe, no call (a failure while flushing starts
        no new probe), so a loop closed next finds no task still pending.
        """
        await self._stop_probe()
        self.leases.give_up_all()
        await self.flush()
        self._closed = True
        if self._delayed is not None:
            self._delayed.cancel()
        await self._stop_probe()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._lane is not None:
            self._lane.close()
        await self.redis.aclose()

    async def _stop_probe(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None and not probe.done():
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe


class _Batch(NamedTuple):
    """Settlements summed for one script call, with the batch's id: sent again as they are."""

    args: list[Arg]  # id, counts, reservation ids, spend (spec, ts, usd), give-backs (lease, usd)
    settlements: int  # how many it sums


class _Call(NamedTuple):
    """One RESERVE call: its requests, the leases it asks for, the settlements it carries."""

    asks: list[_Ask]
    leases: list[LeaseAsk]
    batch: _Batch | None
    args: list[Arg]
    now: float


class _Ask(NamedTuple):
    """One request's reservation, waiting for the script call it shares."""

    ticket: int  # its reservation id
    backend: str
    usd: float
    limits: tuple[Limit, ...]
    respect_halt: bool
    now: float
    answer: asyncio.Future[int | Refusal | Halt]


def _answer(answer: bytes, ask: _Ask) -> int | Refusal | Halt:
    """One request's answer from RESERVE."""
    tag = answer[:1]
    if tag == b"o":
        return ask.ticket
    if tag == b"l":
        _, which, spent = answer.split(b"\t", 2)
        return Refusal(ask.limits[int(which) - 1], float(spent))
    _, since, until, reason = answer.split(b"\t", 3)
    return _halt(reason, since, until)


def _halt(reason: bytes, since: bytes, until: bytes) -> Halt:
    return Halt(reason.decode(), float(since or 0), float(until) if until else None)
