"""The guard's state with `--workers N` and no Redis: the shared SQLite store, never waited on the loop.

The admissions of one loop turn go to the store together, in one transaction. The loop asks the
store's no-wait connection: when another worker's transaction holds the file (tens of µs at a
time), it asks again a loop turn later, and after a few tries it waits in a worker thread, so a
busy file never blocks the event loop (the busy timeout is seconds). Writes
the guard only tells the store (a release, a halt) that find the file busy go to a thread too.
Settlements arrive in batches on the recorder's thread, which may wait. A file still locked after
the busy timeout is a store that does not answer: [state] fail decides (open by default).

A busy worker leases, as the Redis store's gateways do (redis_leases.py): when a loop turn brings
several admissions, its transaction also asks for a slice of the budget (a reservation row of the
worker's, at most an eighth of the room left), and the requests that fit it are admitted here,
with no transaction, for half a second. Each one's settlement gives its share back to the lease's
row with the batch that adds its spend; the unspent part goes back when the lease ends (in a
thread). A lease is a reservation every worker sees, so no worker admits past a budget; a halt
set by another worker is seen when this worker's lease ends.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any

from driftgate.proxy.guard.ledger import Halt, Limit
from driftgate.proxy.guard.redis_leases import LEASE_SECONDS, Lease, LeaseAsk, Leases, Leasing
from driftgate.proxy.guard.shared_ledger import Ask, Busy, Over, SharedSqliteGuardStore
from driftgate.proxy.guard.state import (
    NO_RESERVATION,
    Refusal,
    Settlement,
    Snapshot,
    StoreUnreachable,
    snapshot_of,
)

log = logging.getLogger("driftgate.guard")
QUICK_TRIES = 3  # no-wait attempts, a loop iteration apart, before waiting in a thread
Pending = tuple[Ask, "asyncio.Future[int | Refusal | Halt]"]


class _LockedLeases(Leases):
    """Leases whose every change holds `lock` (the loop draws, the recorder's thread settles), and
    whose give-ups (a lease's timer, a halt) have what they give back written soon."""

    def __init__(self, lock: threading.RLock, soon: Callable[[], None], *args: Any) -> None:
        super().__init__(*args)
        self._lock = lock
        self._soon = soon

    def give_up(self, lease: Lease, used_up: bool) -> None:
        with self._lock:
            super().give_up(lease, used_up)
        self._soon()


class SharedState:
    """GuardState over SharedSqliteGuardStore (one file under DRIFTGATE_HOME, every worker)."""

    kind = "embedded"

    def __init__(
        self,
        store: SharedSqliteGuardStore,
        leasing: Leasing = "busy",
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.store = store
        self.waited = 0  # batches that found the file busy QUICK_TRIES times (a thread waited)
        self._asks: list[Pending] = []
        self._wants: list[LeaseAsk] = []  # the leases the pending asks' transaction asks for
        self._tries = 0  # no-wait attempts the pending asks have made
        self._scheduled = False
        self._background: set[asyncio.Future[None]] = set()
        # Lease ids are reservation rows every worker sees: negative, from the pid, never one
        # SQLite hands out. Drawn requests' tickets are negative too, and never reach the file.
        self._lease_ids = itertools.count(1)
        self._drawn_ids = itertools.count(1)
        self._lock = threading.RLock()
        self._gives: list[tuple[int, float]] = []  # give-backs not yet written
        self._writing = False  # a thread is on its way to write them
        self.leases = _LockedLeases(
            self._lock, self._write_soon, leasing, lease_seconds, self._lease_id, self._give_back
        )

    def _lease_id(self) -> int:
        return -((self.store.pid << 32) | next(self._lease_ids))

    def _give_back(self, lease: int, usd: float) -> None:
        self._gives.append((lease, usd))  # under the lock: Leases calls it from its changes

    def _take_gives(self) -> list[tuple[int, float]]:
        with self._lock:
            gives, self._gives = self._gives, []
            return gives

    def _write_soon(self) -> None:
        """Write the give-backs in a thread (the file may be busy), unless one is on its way."""
        if not self._gives or self._writing:
            return
        self._writing = True
        self._later(self._write_gives, None)

    def _write_gives(self, _: None) -> None:
        self._writing = False  # give-backs queued from here on start another write
        gives = self._take_gives()
        try:
            self.store.give_back(gives)
        except Exception as exc:  # the file stayed locked: they go with the next write
            self._requeue(gives)
            log.warning("spend guard: could not give back leased budget yet (%s)", exc)

    def _requeue(self, gives: list[tuple[int, float]]) -> None:
        with self._lock:
            self._gives[:0] = gives

    async def admit(
        self, backend: str, usd: float, limits: tuple[Limit, ...], now: float, respect_halt: bool
    ) -> int | Refusal | Halt:
        if self.leases.holding:  # a lease held: a request that fits it needs no transaction
            ticket = -next(self._drawn_ids)
            with self._lock:
                drawn = self.leases.draw(ticket, backend, usd, limits, now)
            if drawn:
                return ticket
        # The admissions of one loop turn share a transaction: its fixed cost (the lock, reading
        # the halt, the other workers' reservations and new spend, the commit) is paid once.
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[int | Refusal | Halt] = loop.create_future()
        self._asks.append((Ask(backend, usd, limits, now, respect_halt), answer))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._run_asks)
        return await answer

    def _run_asks(self) -> None:
        self._scheduled = False
        batch, self._asks = self._asks, []
        if not batch:
            return
        if not self._tries:  # a first attempt: the leases this turn's admissions ask for
            busy = len(batch) > 1
            with self._lock:
                for ask, _ in batch:
                    want = self.leases.wanted(ask.backend, ask.usd, ask.limits, busy)
                    if want is not None:
                        self._wants.append(want)
        wants, grants = self._wants, list[float]()
        try:
            got = self.store.try_admit([ask for ask, _ in batch], wants, grants)
        except Busy:
            self._tries += 1
            if self._tries < QUICK_TRIES:  # another worker's transaction: ask again next turn
                self._asks[:0] = batch
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._run_asks)
                return
            self._tries = 0
            self._wants = []
            self.waited += 1
            task = asyncio.ensure_future(self._wait_for(batch, wants))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return
        except Exception as exc:
            self._tries = 0
            self._wants = []
            self._granted(wants, None, batch)
            _fail(batch, exc)
            return
        self._tries = 0
        self._wants = []
        self._granted(wants, grants, batch)
        self._answer(batch, got)

    def _granted(
        self, wants: list[LeaseAsk], grants: list[float] | None, batch: list[Pending]
    ) -> None:
        if not wants:
            return
        now = max(ask.now for ask, _ in batch)
        with self._lock:
            self.leases.granted(wants, grants, now, asyncio.get_running_loop())
        self._write_soon()  # a lease it could not keep (one asked of a failed call) goes back

    async def _wait_for(self, batch: list[Pending], wants: list[LeaseAsk]) -> None:
        """The asks of a batch that kept finding the file busy, waited for in a thread."""
        grants: list[float] = []
        try:
            got = await asyncio.to_thread(self.store.admit, [ask for ask, _ in batch], wants,
                                          grants)  # fmt: skip
        except sqlite3.OperationalError as exc:  # still locked after the busy timeout
            self._granted(wants, None, batch)
            _fail(batch, StoreUnreachable(str(exc)))
            return
        except Exception as exc:
            self._granted(wants, None, batch)
            _fail(batch, exc)
            return
        self._granted(wants, grants, batch)
        self._answer(batch, got)

    def _answer(self, batch: list[Pending], got: list[int | Over | Halt]) -> None:
        for (ask, answer), result in zip(batch, got, strict=True):
            if answer.done():  # its request is gone (the client hung up): give the room back
                if isinstance(result, int):
                    self.release(result, ask.backend)
                continue
            answer.set_result(
                Refusal(result.limit, result.spent) if isinstance(result, Over) else result
            )

    def settle(self, ticket: int, backend: str, usd: float, now: float) -> None:
        self.settle_many([(ticket, backend, usd, now)])

    def settle_many(self, settled: Sequence[Settlement]) -> None:
        rows: list[tuple[int, float, float]] = []
        drawn: list[tuple[str, float, float]] = []
        with self._lock:
            for ticket, backend, usd, now in settled:
                lease = self.leases.settled(ticket) if ticket < 0 else None
                if lease is not None:  # drawn from a lease: its spend, and its share back
                    drawn.append((backend, usd, now))
                    self._gives.append(lease)
                elif ticket == NO_RESERVATION:  # let through while the file did not answer
                    drawn.append((backend, usd, now))  # its spend counts all the same
                else:
                    rows.append((ticket, usd, now))
            gives, self._gives = self._gives, []
        try:
            self.store.settle_many(rows, drawn, gives)
        except Exception:
            self._requeue(gives)  # what goes back to leases is not lost with the batch
            raise

    def release(self, ticket: int, backend: str) -> None:
        if ticket < 0:  # drawn from a lease: its share goes back to it
            with self._lock:
                lease = self.leases.settled(ticket)
                if lease is not None:
                    self._gives.append(lease)
            self._write_soon()
            return
        try:
            self.store.try_release(ticket)
        except Busy:
            self._later(self.store.release, ticket)

    def halt(self, halt: Halt) -> None:
        self.leases.give_up_all()  # nothing more is drawn from them here
        try:
            self.store.try_halt(halt)
        except Busy:
            self._later(self.store.halt, halt)

    def _later(self, call: Callable[[Any], None], arg: Any) -> None:
        """`call(arg)` in a worker thread (it waits for the file there), kept until it is done."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on the loop: this thread may wait
            call(arg)
            return
        done = loop.run_in_executor(None, call, arg)
        self._background.add(done)
        done.add_done_callback(self._background.discard)

    async def resume(self, now: float) -> None:
        await asyncio.to_thread(self.store.resume, now)

    async def halted(self, now: float) -> Halt | None:
        return await asyncio.to_thread(self.store.halted, now)

    async def snapshot(self, limits: tuple[Limit, ...], now: float) -> Snapshot:
        return await asyncio.to_thread(snapshot_of, self.store, limits, now)

    def health(self) -> dict[str, Any] | None:
        return None

    def budgets(self, limits_for: Callable[[str], tuple[Limit, ...]]) -> None:
        self.leases.give_up_all()  # granted against the old budgets; the store keeps every window

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.leases.forget()  # closing the store drops every row of this worker's, leases too
        if self._background:  # a release or halt still waiting for the file
            await asyncio.wait(self._background)
        await asyncio.to_thread(self.store.close)


def _fail(batch: list[Pending], exc: BaseException) -> None:
    for _, answer in batch:
        if not answer.done():
            answer.set_exception(exc)
