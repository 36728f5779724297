"""The guard's state with --workers N: a busy guard file never blocks the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from driftgate.proxy.guard.ledger import DAY, TOTAL, Halt, Limit
from driftgate.proxy.guard.shared_ledger import SharedSqliteGuardStore
from driftgate.proxy.guard.shared_state import SharedState
from driftgate.proxy.guard.state import Refusal

DAILY = (Limit(TOTAL, DAY, 10.0),)
BOUND = 60.0


def _locker(path: Path) -> sqlite3.Connection:
    """Another process's view of the file: a connection that takes the write lock and holds it."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    return db


def test_an_admission_waits_for_a_busy_file_without_blocking_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "guard.sqlite3"
    state = SharedState(SharedSqliteGuardStore(path))

    async def body() -> None:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:  # the loop's other work: it runs while the admission waits
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.001)

        holder = _locker(path)
        ticking = asyncio.create_task(ticker())
        admitting = asyncio.create_task(state.admit("a", 1.0, DAILY, 1.0, True))
        while ticks < 50:  # 50 turns of the loop while the other connection holds the lock
            await asyncio.sleep(0.001)
        assert not admitting.done()
        holder.execute("COMMIT")
        holder.close()
        ticket = await asyncio.wait_for(admitting, BOUND)
        stop.set()
        await ticking
        assert isinstance(ticket, int)
        assert state.waited == 1  # it waited in a thread, not on the loop
        await state.close()

    asyncio.run(body())


def test_release_and_halt_on_a_busy_file_are_done_once_it_is_free(tmp_path: Path) -> None:
    path = tmp_path / "guard.sqlite3"
    state = SharedState(SharedSqliteGuardStore(path))
    other = SharedSqliteGuardStore(path)  # another worker

    async def body() -> None:
        ticket = await state.admit("a", 6.0, DAILY, 1.0, True)
        assert isinstance(ticket, int)
        holder = _locker(path)
        state.release(ticket, "a")  # returns at once: the file is busy
        state.halt(Halt("stop", 1.0, None))
        assert other.in_flight() == 6.0  # not yet: the lock is held
        holder.execute("COMMIT")
        holder.close()
        deadline = time.monotonic() + BOUND
        while other.in_flight() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert other.in_flight() == 0.0
        while other.halted(2.0) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert other.halted(2.0) == Halt("stop", 1.0, None)
        await state.close()

    asyncio.run(body())
    other.close()


def test_a_refusal_names_the_limit_and_what_it_holds_across_workers(tmp_path: Path) -> None:
    path = tmp_path / "guard.sqlite3"
    a, b = SharedState(SharedSqliteGuardStore(path)), SharedState(SharedSqliteGuardStore(path))

    async def body() -> None:
        first = await a.admit("x", 4.0, DAILY, 1.0, True)
        assert isinstance(first, int)
        a.settle_many([(first, "x", 3.0, 2.0)])
        held = await a.admit("x", 5.0, DAILY, 3.0, True)
        assert isinstance(held, int)
        assert await b.admit("x", 3.0, DAILY, 4.0, True) == Refusal(DAILY[0], 8.0)
        snap = await b.snapshot(DAILY, 5.0)
        assert snap.spent[DAILY[0]] == 8.0 and snap.in_flight == 5.0 and snap.halt is None
        await a.close()
        await b.close()

    asyncio.run(body())
