"""The guard's state with `--workers N` and no Redis: the shared SQLite store, never waited on the loop.

The admissions of one loop turn go to the store together, in one transaction. The loop asks the
store's no-wait connection: when another worker's transaction holds the file (tens of µs at a
time), it asks again a loop turn later, and after a few tries it waits in a worker thread, so a
busy file never blocks the event loop (the busy timeout is seconds). Writes
the guard only tells the store (a release, a halt) that find the file busy go to a thread too.
Settlements arrive in batches on the recorder's thread, which may wait. A file still locked after
the busy timeout is a store that does not answer: [state] fail decides (open by default).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from driftgate.proxy.guard.ledger import Halt, Limit
from driftgate.proxy.guard.shared_ledger import Ask, Busy, Over, SharedSqliteGuardStore
from driftgate.proxy.guard.state import (
    Refusal,
    Settlement,
    Snapshot,
    StoreUnreachable,
    snapshot_of,
)

QUICK_TRIES = 3  # no-wait attempts, a loop iteration apart, before waiting in a thread


class SharedState:
    """GuardState over SharedSqliteGuardStore (one file under DRIFTGATE_HOME, every worker)."""

    kind = "embedded"

    def __init__(self, store: SharedSqliteGuardStore) -> None:
        self.store = store
        self.waited = 0  # batches that found the file busy QUICK_TRIES times (a thread waited)
        self._asks: list[tuple[Ask, asyncio.Future[int | Refusal | Halt]]] = []
        self._tries = 0  # no-wait attempts the pending asks have made
        self._scheduled = False
        self._background: set[asyncio.Future[None]] = set()

    async def admit(
        self, backend: str, usd: float, limits: tuple[Limit, ...], now: float, respect_halt: bool
    ) -> int | Refusal | Halt:
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
        try:
            got = self.store.try_admit([ask for ask, _ in batch])
        except Busy:
            self._tries += 1
            if self._tries < QUICK_TRIES:  # another worker's transaction: ask again next turn
                self._asks[:0] = batch
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._run_asks)
                return
            self._tries = 0
            self.waited += 1
            task = asyncio.ensure_future(self._wait_for(batch))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return
        except Exception as exc:
            self._tries = 0
            _fail(batch, exc)
            return
        self._tries = 0
        self._answer(batch, got)

    async def _wait_for(
        self, batch: list[tuple[Ask, asyncio.Future[int | Refusal | Halt]]]
    ) -> None:
        """The asks of a batch that kept finding the file busy, waited for in a thread."""
        try:
            got = await asyncio.to_thread(self.store.admit, [ask for ask, _ in batch])
        except sqlite3.OperationalError as exc:  # still locked after the busy timeout
            _fail(batch, StoreUnreachable(str(exc)))
            return
        except Exception as exc:
            _fail(batch, exc)
            return
        self._answer(batch, got)

    def _answer(
        self,
        batch: list[tuple[Ask, asyncio.Future[int | Refusal | Halt]]],
        got: list[int | Over | Halt],
    ) -> None:
        for (ask, answer), result in zip(batch, got, strict=True):
            if answer.done():  # its request is gone (the client hung up): give the room back
                if isinstance(result, int):
                    self.release(result, ask.backend)
                continue
            answer.set_result(
                Refusal(result.limit, result.spent) if isinstance(result, Over) else result
            )

    def settle(self, ticket: int, backend: str, usd: float, now: float) -> None:
        self.store.settle(ticket, usd, now)

    def settle_many(self, settled: Sequence[Settlement]) -> None:
        self.store.settle_many([(t, usd, now) for t, _, usd, now in settled])

    def release(self, ticket: int, backend: str) -> None:
        try:
            self.store.try_release(ticket)
        except Busy:
            self._later(self.store.release, ticket)

    def halt(self, halt: Halt) -> None:
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
        return None  # the store keeps every window

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        if self._background:  # a release or halt still waiting for the file
            await asyncio.wait(self._background)
        await asyncio.to_thread(self.store.close)


def _fail(
    batch: list[tuple[Ask, asyncio.Future[int | Refusal | Halt]]], exc: BaseException
) -> None:
    for _, answer in batch:
        if not answer.done():
            answer.set_exception(exc)
