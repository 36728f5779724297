"""The guard's store: windows, reservations, halt and resume, and what survives a restart."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftgate.proxy.guard.ledger import (
    BUCKETS,
    DAY,
    HOUR,
    TOTAL,
    Halt,
    Limit,
    Settled,
    SqliteGuardStore,
    _Window,
)
from driftgate.proxy.guard.shared_ledger import SharedSqliteGuardStore

DAILY_10 = (Limit(TOTAL, DAY, 10.0),)


def test_a_reservation_past_the_budget_names_the_limit_it_breaks() -> None:
    store = SqliteGuardStore(None)
    first = store.reserve("a", 6.0, DAILY_10, now=0.0)
    assert isinstance(first, int)
    refused = store.reserve("a", 6.0, DAILY_10, now=1.0)
    assert refused == DAILY_10[0]
    assert store.in_flight() == 6.0


def test_settling_replaces_the_reservation_by_the_real_cost() -> None:
    store = SqliteGuardStore(None)
    ticket = store.reserve("a", 6.0, DAILY_10, now=0.0)
    assert isinstance(ticket, int)
    store.settle(ticket, 1.5, now=1.0)
    assert store.in_flight() == 0.0
    assert store.spent(TOTAL, DAY, now=2.0) == 1.5
    assert store.spent("a", HOUR, now=2.0) == 1.5
    assert store.spent("b", HOUR, now=2.0) == 0.0
    assert isinstance(store.reserve("a", 8.5, DAILY_10, now=3.0), int)


def test_spend_leaves_the_window_when_it_is_older_than_it() -> None:
    store = SqliteGuardStore(None)
    hourly = (Limit(TOTAL, HOUR, 1.0),)
    ticket = store.reserve("a", 1.0, hourly, now=0.0)
    assert isinstance(ticket, int)
    store.settle(ticket, 1.0, now=0.0)
    assert store.reserve("a", 0.5, hourly, now=HOUR - 1) == hourly[0]
    assert isinstance(store.reserve("a", 0.5, hourly, now=HOUR + 1), int)


def test_a_release_gives_the_room_back() -> None:
    store = SqliteGuardStore(None)
    ticket = store.reserve("a", 9.0, DAILY_10, now=0.0)
    assert isinstance(ticket, int)
    store.release(ticket)
    assert isinstance(store.reserve("a", 9.0, DAILY_10, now=0.0), int)


def test_a_per_backend_budget_leaves_other_backends_alone() -> None:
    store = SqliteGuardStore(None)
    only_a = (Limit("a", DAY, 1.0),)
    ticket = store.reserve("a", 1.0, only_a, now=0.0)
    assert isinstance(ticket, int)
    store.settle(ticket, 1.0, now=0.0)
    assert store.reserve("a", 0.1, only_a, now=1.0) == only_a[0]
    assert isinstance(store.reserve("b", 0.1, (Limit("b", DAY, 1.0),), now=1.0), int)


def test_halt_expires_and_resume_forgets_earlier_spend() -> None:
    store = SqliteGuardStore(None)
    store.halt(Halt("too much", since=0.0, until=60.0))
    assert store.halted(30.0) == Halt("too much", 0.0, 60.0)
    assert store.halted(60.0) is None
    ticket = store.reserve("a", 10.0, DAILY_10, now=61.0)
    assert isinstance(ticket, int)
    store.settle(ticket, 10.0, now=61.0)
    assert store.reserve("a", 1.0, DAILY_10, now=62.0) == DAILY_10[0]
    store.halt(Halt("again", since=62.0, until=None))
    store.resume(now=63.0)
    assert store.halted(64.0) is None
    assert isinstance(store.reserve("a", 1.0, DAILY_10, now=64.0), int)


def test_spend_and_halt_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "guard.db"
    store = SqliteGuardStore(path)
    ticket = store.reserve("a", 4.0, DAILY_10, now=100.0)
    assert isinstance(ticket, int)
    store.settle(ticket, 4.0, now=100.0)
    store.halt(Halt("budget", since=100.0, until=None))
    unsettled = store.reserve("a", 1.0, DAILY_10, now=101.0)
    assert isinstance(unsettled, int)
    store.close()

    again = SqliteGuardStore(path)
    assert again.spent(TOTAL, DAY, now=102.0) == 4.0  # a reservation dies with its process
    assert again.halted(102.0) == Halt("budget", 100.0, None)
    again.resume(now=103.0)
    again.close()
    third = SqliteGuardStore(path)
    assert third.halted(104.0) is None
    assert third.spent(TOTAL, DAY, now=104.0) == 0.0
    third.close()


# A request: its reservation (an upper bound of what it will cost) and its real cost <= that.
requests = st.lists(st.tuples(st.floats(0.01, 3.0), st.floats(0.0, 1.0)), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(requests=requests, order=st.randoms(use_true_random=False), budget=st.floats(0.5, 20.0))
def test_interleaved_requests_never_spend_past_the_budget(
    requests: list[tuple[float, float]], order: object, budget: float
) -> None:
    """Any interleaving of reserve and settle: spend <= budget when reservations bound the cost."""
    import random

    assert isinstance(order, random.Random)
    store = SqliteGuardStore(None)
    limits = (Limit(TOTAL, DAY, budget),)
    pending = list(enumerate(requests))
    held: dict[int, float] = {}
    spent = 0.0
    while pending or held:
        if pending and (not held or order.random() < 0.5):
            _, (reserve, share) = pending.pop(order.randrange(len(pending)))
            ticket = store.reserve("a", reserve, limits, now=1.0)
            if isinstance(ticket, int):
                held[ticket] = reserve * share
        else:
            ticket = order.choice(sorted(held))
            cost = held.pop(ticket)
            store.settle(ticket, cost, now=1.0)
            spent += cost
        assert spent <= budget + 1e-9
        assert store.spent(TOTAL, DAY, now=1.0) <= budget + 1e-9


def test_a_days_settlements_keep_a_bounded_number_of_entries() -> None:
    window = _Window(DAY)
    for i in range(100_000):  # one settlement a second for more than a day, each reservation sums
        window.add(float(i), 0.01)
        window.sum(float(i))
    assert len(window.entries) <= BUCKETS + 1
    assert window.sum(100_000.0) == pytest.approx(0.01 * 86_400, rel=0.002)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 2 * HOUR), st.floats(0.001, 5.0)), max_size=60),
    st.floats(0, 3 * HOUR),
)
def test_a_window_never_counts_less_than_the_exact_one(
    spends: list[tuple[float, float]], now: float
) -> None:
    window = _Window(HOUR)
    for ts, usd in sorted(spends):
        window.add(ts, usd)
    exact = sum(usd for ts, usd in spends if now - HOUR <= ts)
    longest = sum(usd for ts, usd in spends if now - HOUR - window.grain <= ts)
    got = window.sum(now)
    assert exact - 1e-9 <= got <= longest + 1e-9


@pytest.mark.parametrize("shared", [False, True])
def test_a_batch_of_settlements_counts_and_survives_a_restart_as_one_by_one_would(
    tmp_path: Path, shared: bool
) -> None:
    """settle_many (one transaction for a batch) leaves what the same settlements one by one do."""
    path = tmp_path / "guard.db"
    store: SqliteGuardStore | SharedSqliteGuardStore = (
        SharedSqliteGuardStore(path) if shared else SqliteGuardStore(path)
    )
    tickets = [store.reserve(b, 2.0, DAILY_10, now=10.0) for b in ("a", "b", "a")]
    assert all(isinstance(t, int) for t in tickets)
    a1, b1, a2 = (int(t) for t in tickets)
    store.settle_many(
        [
            Settled(a1, 1.0, 11.0),
            Settled(b1, 0.0, 11.0),
            Settled(a2, 0.5, 12.0),
            Settled(999, 7.0, 12.0),
        ]
    )
    assert store.in_flight() == 0.0
    assert store.spent(TOTAL, DAY, now=13.0) == 1.5  # an unknown ticket settles nothing
    assert store.spent("a", HOUR, now=13.0) == 1.5 and store.spent("b", HOUR, now=13.0) == 0.0
    store.close()
    again = SqliteGuardStore(path)
    assert again.spent(TOTAL, DAY, now=14.0) == 1.5
    assert again.spent("a", DAY, now=14.0) == 1.5
    again.close()


@pytest.mark.parametrize("shared", [False, True])
def test_a_batch_writes_one_spend_row_per_backend_and_time(tmp_path: Path, shared: bool) -> None:
    """A batch's settlements to one backend at one time are one row (their sum) in the file."""
    path = tmp_path / "guard.db"
    store: SqliteGuardStore | SharedSqliteGuardStore = (
        SharedSqliteGuardStore(path) if shared else SqliteGuardStore(path)
    )
    backends = ["a", "b"] * 35
    tickets = [store.reserve(b, 0.1, DAILY_10, now=10.0) for b in backends]
    store.settle_many([(int(t), 0.01, 11.0) for t in tickets])  # plain tuples, as the guard sends
    store.settle_many([])
    assert store.in_flight() == pytest.approx(0.0)
    assert store.spent("a", DAY, now=12.0) == pytest.approx(0.35)
    assert store.spent(TOTAL, DAY, now=12.0) == pytest.approx(0.70)
    store.close()
    with sqlite3.connect(path) as db:
        rows = sorted(db.execute("SELECT ts, backend, usd FROM spend").fetchall())
    assert [(ts, backend) for ts, backend, _ in rows] == [(11.0, "a"), (11.0, "b")]
    assert [usd for _, _, usd in rows] == [pytest.approx(0.35), pytest.approx(0.35)]
    again = SqliteGuardStore(path)
    assert again.spent(TOTAL, DAY, now=12.0) == pytest.approx(0.70)
    assert again.spent("b", HOUR, now=12.0) == pytest.approx(0.35)
    again.close()


def test_admit_answers_the_halt_before_reserving_and_lifts_an_expired_one() -> None:
    store = SqliteGuardStore(None)
    store.halt(Halt("over", since=0.0, until=100.0))
    assert store.admit("a", 1.0, DAILY_10, 50.0, True) == Halt("over", 0.0, 100.0)
    assert store.in_flight() == 0.0
    ticket = store.admit("a", 1.0, DAILY_10, 50.0, False)  # warn: the halt is not asked
    assert isinstance(ticket, int)
    assert isinstance(store.admit("a", 1.0, DAILY_10, 100.0, True), int)  # expired: lifted
    assert store.halted(100.0) is None
    assert store.admit("a", 9.0, DAILY_10, 101.0, True) == DAILY_10[0]


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from([None, 0.0, 0.25, 1e-7, 3.0])),
        max_size=40,
    ),
    st.integers(min_value=0, max_value=5),
)
@settings(max_examples=60, deadline=None)
def test_settling_the_guards_pairs_at_once_leaves_what_settle_many_leaves(
    asks: list[tuple[str, float | None]], unknown: int
) -> None:
    """settle_at((ticket, usd or None) pairs, now) == settle_many((id, usd or 0, now) triples):
    the same windows, the same in flight, the same rows in the file, to the last bit."""
    paths, stores = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("many", "at"):
            path = Path(tmp) / f"{name}.db"
            store = SqliteGuardStore(path)
            tickets = [store.reserve(b, 0.5, (), now=10.0) for b, _ in asks]
            pairs = [((int(t), b, 0.5), usd) for t, (b, usd) in zip(tickets, asks, strict=True)]
            pairs += [((10_000 + i, "a", 0.5), 1.0) for i in range(unknown)]  # never reserved
            if name == "many":
                store.settle_many([(t[0], usd or 0.0, 11.0) for t, usd in pairs])
            else:
                store.settle_at(pairs, 11.0)
            paths.append(path)
            stores.append(store)
        many, at = stores
        assert at.in_flight() == many.in_flight()
        for key in (TOTAL, "a", "b", "c"):
            for window in (HOUR, DAY):
                assert at.spent(key, window, now=12.0) == many.spent(key, window, now=12.0)
        for store in stores:
            store.close()
        rows = []
        for path in paths:
            with sqlite3.connect(path) as db:
                rows.append(
                    db.execute("SELECT ts, backend, usd FROM spend ORDER BY rowid").fetchall()
                )
        assert rows[0] == rows[1]
