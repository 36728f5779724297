"""The shared guard store: budgets hold across stores (worker processes) on one file."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftgate.proxy.guard.ledger import DAY, TOTAL, Halt, Limit, SqliteGuardStore
from driftgate.proxy.guard.shared_ledger import SharedSqliteGuardStore

BUDGET = 10.0
DAILY = (Limit(TOTAL, DAY, BUDGET),)

# One step: which store acts, reserve (cost reserved) or settle its oldest ticket (real cost).
Step = tuple[int, str, float]
steps = st.lists(
    st.tuples(st.integers(0, 1), st.sampled_from(["reserve", "settle"]), st.floats(0.0, 4.0)),
    max_size=30,
)


@settings(max_examples=25, deadline=None)
@given(steps)
def test_two_stores_on_one_file_never_reserve_past_the_budget(
    tmp_path_factory: pytest.TempPathFactory, plan: list[Step]
) -> None:
    path = tmp_path_factory.mktemp("g") / "guard.sqlite3"
    stores = [SharedSqliteGuardStore(path), SharedSqliteGuardStore(path)]
    tickets: list[list[tuple[int, float]]] = [[], []]
    settled = 0.0
    try:
        for who, op, usd in plan:
            store = stores[who]
            if op == "reserve":
                got = store.reserve("a", usd, DAILY, now=1.0)
                if isinstance(got, int):
                    tickets[who].append((got, usd))
            elif tickets[who]:
                ticket, reserved = tickets[who].pop(0)
                real = min(usd, reserved)  # a request costs at most what was reserved for it
                store.settle(ticket, real, now=1.0)
                settled += real
            held = sum(u for mine in tickets for _, u in mine)
            assert settled + held <= BUDGET + 1e-9
            for s in stores:  # each sees the other's reservations and spend
                assert abs(s.spent(TOTAL, DAY, now=1.0) - (settled + held)) < 1e-9
                assert abs(s.in_flight() - held) < 1e-9
    finally:
        for s in stores:
            s.close()


def test_a_halt_by_one_worker_is_seen_by_the_other_and_a_resume_clears_both(tmp_path: Path) -> None:
    a, b = (
        SharedSqliteGuardStore(tmp_path / "g.sqlite3"),
        SharedSqliteGuardStore(tmp_path / "g.sqlite3"),
    )
    ticket = a.reserve("x", 4.0, DAILY, now=1.0)
    assert isinstance(ticket, int)
    a.settle(ticket, 4.0, now=2.0)
    a.halt(Halt("budget reached", 2.0, 100.0))
    assert b.halted(3.0) == Halt("budget reached", 2.0, 100.0)
    assert b.spent(TOTAL, DAY, now=3.0) == 4.0
    b.resume(4.0)
    assert a.halted(5.0) is None
    assert a.spent(TOTAL, DAY, now=5.0) == 0.0  # spend before the resume no longer counts
    assert b.halted(200.0) is None
    a.close()
    b.close()


def test_the_offline_resume_of_the_single_process_store_reaches_the_shared_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "g.sqlite3"
    shared = SharedSqliteGuardStore(path)
    shared.halt(Halt("stop", 1.0, None))
    offline = SqliteGuardStore(path)
    assert offline.halted(2.0) is not None
    offline.resume(2.0)
    offline.close()
    assert shared.halted(3.0) is None
    shared.close()


def _reserve_and_die(path: str) -> None:
    store = SharedSqliteGuardStore(Path(path))
    assert isinstance(store.reserve("a", 9.0, DAILY, now=1.0), int)
    os._exit(0)  # dies holding the reservation, as a killed worker does


def test_a_dead_workers_reservation_is_reclaimed_when_it_is_in_the_way(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite3"
    proc = multiprocessing.get_context("spawn").Process(target=_reserve_and_die, args=(str(path),))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    store = SharedSqliteGuardStore(path)  # a replacement worker starts: it reclaims at once
    assert store.in_flight() == 0.0
    assert isinstance(store.reserve("a", 9.0, DAILY, now=2.0), int)
    store.close()
