"""Leases of the workers' shared guard file: a busy worker admits from a slice of the budget held
as a reservation every worker sees, with no transaction, and the budget still holds."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from driftgate.proxy.guard.ledger import DAY, TOTAL, Halt, Limit
from driftgate.proxy.guard.shared_ledger import SharedSqliteGuardStore
from driftgate.proxy.guard.shared_state import SharedState
from driftgate.proxy.guard.state import Refusal

BUDGET = 100.0
DAILY = (Limit(TOTAL, DAY, BUDGET),)
NOW = 1.0


class CountingStore(SharedSqliteGuardStore):
    """The shared store, counting the admission transactions the loop asks of it."""

    def __init__(self, path: Path, pid: int | None = None) -> None:
        super().__init__(path, pid)
        self.transactions = 0

    def try_admit(self, *args: Any, **kwargs: Any) -> Any:
        self.transactions += 1
        return super().try_admit(*args, **kwargs)


def run(body: Callable[..., Awaitable[None]], *states: SharedState) -> None:
    async def main() -> None:
        try:
            await body(*states)
        finally:
            for state in states:
                await state.close()

    asyncio.run(main())


async def admit_together(
    state: SharedState, n: int, usd: float, respect_halt: bool = True
) -> list[Any]:
    """`n` admissions asked in one loop turn (as a busy worker's requests are); respect_halt
    False as a warn-mode guard asks."""
    asks = (state.admit("a", usd, DAILY, NOW, respect_halt) for _ in range(n))
    return list(await asyncio.gather(*asks))


async def until(what: Callable[[], bool], why: str) -> None:
    for _ in range(500):
        if what():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(why)


def test_a_busy_turn_leases_and_the_next_requests_need_no_transaction(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "guard.sqlite3")
    state = SharedState(store, lease_seconds=0.2)

    async def body(state: SharedState) -> None:
        first = await admit_together(state, 4, 0.1)  # together: the transaction asks for a lease
        assert all(isinstance(t, int) and t > 0 for t in first)
        assert store.transactions == 1
        lease = store.in_flight() - 0.4
        assert 0.1 * 16 <= lease <= BUDGET / 8  # worth a few requests, at most an eighth of room
        drawn = await admit_together(state, 5, 0.1)
        assert all(isinstance(t, int) and t < 0 for t in drawn)  # from the lease: no row
        assert store.transactions == 1  # and no transaction
        assert abs(store.in_flight() - (0.4 + lease)) < 1e-9  # the lease holds them already
        state.settle_many([(t, "a", 0.05, NOW) for t in first + drawn])  # each cost 0.05
        # Spend counted for every request; the lease's row gave back each drawn one's 0.1.
        assert abs(store.spent(TOTAL, DAY, NOW) - (0.45 + lease - 0.5)) < 1e-9
        # The lease ends (0.2 s): what it holds unspent goes back, and nothing stays in flight.
        await until(lambda: store.in_flight() == 0, "the lease was never given back")
        assert abs(store.spent(TOTAL, DAY, NOW) - 0.45) < 1e-9

    run(body, state)


def test_a_lone_request_takes_no_lease(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "guard.sqlite3")
    state = SharedState(store)

    async def body(state: SharedState) -> None:
        for _ in range(3):
            (ticket,) = await admit_together(state, 1, 0.1)
            assert ticket > 0
        assert store.transactions == 3
        assert abs(store.in_flight() - 0.3) < 1e-9

    run(body, state)


def test_no_lease_near_the_end_of_a_budget(tmp_path: Path) -> None:
    """An eighth of the room left is less than 16 requests' worth: requests go one by one, each
    judged against the budget in the file, and the last ones are refused."""
    store = CountingStore(tmp_path / "guard.sqlite3")
    state = SharedState(store, leasing="always")

    async def body(state: SharedState) -> None:
        got = await admit_together(state, 12, 10.0)  # room for 10 of them
        assert sum(isinstance(t, int) for t in got) == 10
        assert sum(isinstance(t, Refusal) for t in got) == 2
        assert abs(store.in_flight() - BUDGET) < 1e-9  # ten reservations, no lease
        assert all(t > 0 for t in got if isinstance(t, int))

    run(body, state)


def test_a_drawn_request_released_gives_its_share_back(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "guard.sqlite3")
    state = SharedState(store, leasing="always", lease_seconds=0.2)

    async def body(state: SharedState) -> None:
        (row,) = await admit_together(state, 1, 0.1)
        (drawn,) = await admit_together(state, 1, 0.1)
        assert row > 0 > drawn
        state.release(drawn, "a")  # it never reached an upstream
        state.release(row, "a")
        await until(lambda: store.in_flight() == 0, "a share was never given back")
        assert store.spent(TOTAL, DAY, NOW) == 0

    run(body, state)


def test_a_halt_by_another_worker_stops_this_ones_draws_when_its_lease_ends(
    tmp_path: Path,
) -> None:
    path = tmp_path / "guard.sqlite3"
    mine = SharedState(CountingStore(path), leasing="always", lease_seconds=0.2)
    other = SharedSqliteGuardStore(path, pid=os.getppid())  # another live process's view

    async def body(mine: SharedState) -> None:
        await admit_together(mine, 1, 0.1)  # the lease comes with it
        other.halt(Halt("the daily total budget is reached", since=NOW, until=None))
        (drawn,) = await admit_together(mine, 1, 0.1)
        assert isinstance(drawn, int) and drawn < 0  # within the lease: not seen yet
        await asyncio.sleep(0.3)  # the lease has ended
        (after,) = await admit_together(mine, 1, 0.1)
        assert isinstance(after, Halt)

    try:
        run(body, mine)
    finally:
        other.close()


def test_a_halt_here_gives_the_leases_up_at_once(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "guard.sqlite3")
    state = SharedState(store, leasing="always", lease_seconds=30.0)

    async def body(state: SharedState) -> None:
        (row,) = await admit_together(state, 1, 0.1)
        assert store.in_flight() > 0.1  # the lease
        state.halt(Halt("a header rule", since=NOW, until=None))
        assert isinstance((await admit_together(state, 1, 0.1))[0], Halt)  # not drawn: halted
        state.settle_many([(row, "a", 0.1, NOW)])
        await until(lambda: store.in_flight() == 0, "the lease was kept after the halt")

    run(body, state)


@pytest.mark.parametrize("seed", range(6))
def test_two_leasing_workers_never_spend_past_one_budget(tmp_path: Path, seed: int) -> None:
    """Two workers on one file, leasing, turns of several admissions at random, each request
    costing at most what it reserved: the spend settled never passes the budget, and what the
    file holds in flight plus the spend never passes it either."""
    rng = random.Random(seed)
    path = tmp_path / "guard.sqlite3"
    stores = [CountingStore(path), CountingStore(path, pid=os.getppid())]
    states = [SharedState(s, leasing="busy", lease_seconds=0.05) for s in stores]
    budget = 20.0
    limits = (Limit(TOTAL, DAY, budget),)
    settled = 0.0

    async def body(*states: SharedState) -> None:
        nonlocal settled
        out: list[tuple[int, int, float]] = []  # worker, ticket, reserved
        drawn = 0
        for _ in range(60):
            who = rng.randrange(2)
            usd = rng.choice([0.01, 0.05, 0.2, 1.0])
            asks = rng.randint(1, 6)
            got = await asyncio.gather(
                *(states[who].admit("a", usd, limits, NOW, True) for _ in range(asks))
            )
            admitted = [t for t in got if isinstance(t, int)]
            drawn += sum(t < 0 for t in admitted)
            out += [(who, t, usd) for t in admitted]
            rng.shuffle(out)
            k = rng.randint(0, len(out))
            done, out = out[:k], out[k:]
            for w, ticket, reserved in done:  # each costs at most what it reserved
                cost = reserved * rng.random()
                states[w].settle_many([(ticket, "a", cost, NOW)])
                settled += cost
            assert settled <= budget + 1e-9
            assert stores[0].spent(TOTAL, DAY, NOW) <= budget + 1e-9  # spend + in flight
            if rng.random() < 0.2:
                await asyncio.sleep(0.06)  # the leases end
        assert drawn > 0  # some requests were admitted from leases

    run(body, *states)


def test_the_spend_of_a_request_let_through_unguarded_is_counted(tmp_path: Path) -> None:
    """A request let through while the file did not answer (fail open: no reservation) settles
    later: its cost counts against the budgets like any other's."""
    from driftgate.proxy.guard.state import NO_RESERVATION

    store = CountingStore(tmp_path / "guard.sqlite3")
    state = SharedState(store)

    async def body(state: SharedState) -> None:
        state.settle_many([(NO_RESERVATION, "a", 1.5, NOW)])
        assert abs(store.spent(TOTAL, DAY, NOW) - 1.5) < 1e-9

    run(body, state)


def test_a_warn_mode_worker_leases_too(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "guard.sqlite3")
    state = SharedState(store)

    async def body(state: SharedState) -> None:
        together = await admit_together(state, 4, 0.1, respect_halt=False)
        assert all(isinstance(t, int) and t > 0 for t in together)
        (drawn,) = await admit_together(state, 1, 0.1, respect_halt=False)
        assert isinstance(drawn, int) and drawn < 0 and store.transactions == 1

    run(body, state)
