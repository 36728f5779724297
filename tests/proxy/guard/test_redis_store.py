"""The Redis guard store against a real redis-server: the embedded store's semantics, shared.

Several `RedisGuardStore`s on one prefix are several gateways sharing one budget; each has its
own connections. Times are passed in (the guard's wall clock), so windows and expiry are exact.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from driftgate.proxy.guard.ledger import DAY, HOUR, TOTAL, Halt, Limit, SqliteGuardStore
from driftgate.proxy.guard.redis_store import RedisGuardStore
from driftgate.proxy.guard.settings import StateSettings
from driftgate.proxy.guard.state import EmbeddedState, GuardState, Refusal, StoreUnreachable
from tests.fakes.cutting_proxy import CuttingProxy
from tests.fakes.redis_server import RedisServer

DAILY_10 = (Limit(TOTAL, DAY, 10.0),)
TTL = 60.0


def _stores(server: RedisServer, n: int, **kw: Any) -> list[RedisGuardStore]:
    """`n` gateways' stores sharing one fresh prefix (so tests never see each other's keys)."""
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    kw = {"timeout_seconds": 5.0, "reservation_seconds": TTL, **kw}  # a loaded machine is no outage
    state = StateSettings(redis_url=server.url, key_prefix=prefix, **kw)
    # Settled spend is kept for the windows a backend's budgets read (its own hour, the total day).
    return [RedisGuardStore(state, lambda b: (Limit(b, HOUR, 5.0), *DAILY_10)) for _ in range(n)]


def run(server: RedisServer, n: int, body: Callable[..., Awaitable[None]], **kw: Any) -> None:
    """Run `body(*stores)` on a loop with `n` started stores, closed afterwards."""

    async def main() -> None:
        stores = _stores(server, n, **kw)
        for s in stores:
            await s.start()
        try:
            await body(*stores)
        finally:
            for s in stores:
                await s.close()

    asyncio.run(main())


async def _ticket(store: GuardState, usd: float, limits: tuple[Limit, ...], now: float) -> int:
    got = await store.admit("a", usd, limits, now, True)
    assert isinstance(got, int), got
    return got


def test_a_reservation_past_the_budget_names_the_limit_and_what_it_holds(
    shared_redis: RedisServer,
) -> None:
    async def body(a: RedisGuardStore, b: RedisGuardStore) -> None:
        await _ticket(a, 6.0, DAILY_10, 0.0)
        refused = await b.admit("a", 6.0, DAILY_10, 1.0, True)  # the other gateway sees it
        assert refused == Refusal(DAILY_10[0], 6.0)
        assert (await b.snapshot(DAILY_10, 1.0)).in_flight == 6.0

    run(shared_redis, 2, body)


def test_settling_replaces_the_reservation_by_the_real_cost(shared_redis: RedisServer) -> None:
    async def body(a: RedisGuardStore, b: RedisGuardStore) -> None:
        ticket = await _ticket(a, 6.0, DAILY_10, 0.0)
        a.settle(ticket, "a", 1.5, 1.0)
        await a.flush()
        limits = (*DAILY_10, Limit("a", HOUR, 5.0), Limit("b", HOUR, 5.0))
        snap = await b.snapshot(limits, 2.0)
        assert snap.in_flight == 0.0
        assert [snap.spent[x] for x in limits] == [1.5, 1.5, 0.0]
        await _ticket(b, 8.5, DAILY_10, 3.0)

    run(shared_redis, 2, body)


@pytest.mark.parametrize("kind", ["embedded", "redis"])
def test_both_stores_slide_their_windows_alike(kind: str, shared_redis: RedisServer) -> None:
    """Rolling windows, not calendar ones: spend counts for exactly `window` seconds."""
    hourly = (Limit(TOTAL, HOUR, 1.0),)

    async def body(store: GuardState) -> None:
        ticket = await _ticket(store, 1.0, hourly, 0.0)
        store.settle(ticket, "a", 1.0, 0.0)
        if isinstance(store, RedisGuardStore):
            await store.flush()
        refused = await store.admit("a", 0.5, hourly, HOUR - 1, True)
        assert isinstance(refused, Refusal) and refused.spent == 1.0
        await _ticket(store, 0.5, hourly, HOUR + 1)

    if kind == "redis":
        run(shared_redis, 1, body)
    else:
        asyncio.run(body(EmbeddedState(SqliteGuardStore(None))))


def test_a_halt_on_one_gateway_holds_on_all_until_it_lifts_or_any_resumes(
    shared_redis: RedisServer,
) -> None:
    async def body(a: RedisGuardStore, b: RedisGuardStore) -> None:
        ticket = await _ticket(a, 10.0, DAILY_10, 0.0)
        a.settle(ticket, "a", 10.0, 0.0)
        a.halt(Halt("too much", since=0.0, until=60.0))
        await a.flush()
        assert await b.admit("a", 0.1, DAILY_10, 30.0, True) == Halt("too much", 0.0, 60.0)
        assert isinstance(await b.admit("a", 0.1, DAILY_10, 30.0, False), Refusal)  # warn mode
        assert await b.halted(60.0) is None  # the cooldown lifted it for everyone
        a.halt(Halt("again", since=61.0, until=None))
        await a.flush()
        assert await b.halted(10_000.0) == Halt("again", 61.0, None)
        await b.resume(62.0)  # lifts the halt and forgets the spend, on every gateway
        assert await a.halted(63.0) is None
        await _ticket(a, 9.0, DAILY_10, 63.0)

    run(shared_redis, 2, body)


def test_an_unsettled_reservation_is_reclaimed_after_it_expires(shared_redis: RedisServer) -> None:
    async def body(dead: RedisGuardStore, alive: RedisGuardStore) -> None:
        await _ticket(dead, 9.0, DAILY_10, 0.0)  # its gateway dies: never settled
        assert isinstance(await alive.admit("a", 9.0, DAILY_10, TTL - 1, True), Refusal)
        await _ticket(alive, 9.0, DAILY_10, TTL)
        assert (await alive.snapshot(DAILY_10, TTL)).in_flight == 9.0  # only the new one

    run(shared_redis, 2, body)


def test_a_late_settlement_of_a_reclaimed_reservation_still_counts(
    shared_redis: RedisServer,
) -> None:
    async def body(a: RedisGuardStore) -> None:
        ticket = await _ticket(a, 2.0, DAILY_10, 0.0)
        assert (await a.snapshot(DAILY_10, TTL + 1)).in_flight == 0.0  # reclaimed
        a.settle(ticket, "a", 1.0, TTL + 2)
        await a.flush()
        snap = await a.snapshot(DAILY_10, TTL + 3)
        assert snap.spent[DAILY_10[0]] == 1.0 and snap.in_flight == 0.0

    run(shared_redis, 1, body)


# Steps of the interleaving: ("reserve", gateway, usd, share of it the request really costs),
# ("settle", pick), ("die", gateway: its reservations are never settled), ("tick", seconds).
steps = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(0, 2), st.floats(0.01, 3.0), st.floats(0, 1.5)),
        st.tuples(st.just("settle"), st.integers(0, 1000)),
        st.tuples(st.just("die"), st.integers(0, 2)),
        st.tuples(st.just("tick"), st.sampled_from([1.0, TTL / 2, TTL + 1])),
    ),
    min_size=1,
    max_size=30,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps, budget=st.floats(0.5, 10.0))
def test_three_gateways_never_overspend_beyond_what_reservations_underestimate(
    shared_redis: RedisServer, steps: list[tuple[Any, ...]], budget: float
) -> None:
    """Any interleaving of reserve, settle, expiry and dying gateways across three gateways.

    Overspend comes only from reservations that fell short: a cost above its estimate, or a
    request that outlived its reservation (reclaimed as if its gateway had died).
    """
    limits = (Limit(TOTAL, DAY, budget),)

    async def body(*gateways: RedisGuardStore) -> None:
        now = 0.0
        held: list[tuple[int, int, float, float, float]] = []  # gateway, ticket, usd, cost, at
        spent = under = 0.0
        for step in steps:
            if step[0] == "reserve":
                _, g, usd, share = step
                got = await gateways[g].admit("a", usd, limits, now, True)
                if isinstance(got, int):
                    held.append((g, got, usd, usd * share, now))
                else:
                    assert isinstance(got, Refusal) and got.spent + usd > budget
            elif step[0] == "settle" and held:
                g, ticket, usd, cost, at = held.pop(step[1] % len(held))
                gateways[g].settle(ticket, "a", cost, now)
                await gateways[g].flush()
                spent += cost
                under += cost if now >= at + TTL else max(0.0, cost - usd)
            elif step[0] == "die":
                held = [h for h in held if h[0] != step[1]]  # those requests never settle
            elif step[0] == "tick":
                now += step[1]
            # Settled spend stays within the budget plus what reservations underestimated.
            assert spent <= budget + under + 1e-9
            snap = await gateways[0].snapshot(limits, now)
            assert snap.spent[limits[0]] <= budget + under + 1e-9

    run(shared_redis, 3, body)


def test_an_unreachable_redis_answers_at_once_and_is_found_again(
    redis_server: RedisServer,
) -> None:
    async def body(a: RedisGuardStore) -> None:
        ticket = await _ticket(a, 1.0, DAILY_10, 0.0)
        redis_server.stop()
        with pytest.raises(StoreUnreachable):
            await a.admit("a", 1.0, DAILY_10, 1.0, True)
        assert a.health()["reachable"] is False
        # Why, in words: not an exception class ("ConnectionError: Error 111 ...").
        assert a.health()["error"] == "connection refused (nothing is listening there)"
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(StoreUnreachable):  # no second try on the request path
            await a.admit("a", 1.0, DAILY_10, 1.0, True)
        assert loop.time() - started < 0.05
        a.settle(ticket, "a", 0.5, 2.0)  # kept until Redis is back
        redis_server.start()  # same port, empty: what a restart without persistence gives
        while not a.health()["reachable"]:  # the probe finds it (bounded by the test timeout)
            await asyncio.sleep(0.02)
        await a.flush()
        snap = await a.snapshot(DAILY_10, 3.0)
        assert snap.spent[DAILY_10[0]] == 0.5 and snap.in_flight == 0.0

    run(redis_server, 1, body, retry_seconds=0.05)


def test_settlements_from_another_thread_are_sent_in_one_call(shared_redis: RedisServer) -> None:
    async def body(a: RedisGuardStore) -> None:
        tickets = [await _ticket(a, 0.1, DAILY_10, 0.0) for _ in range(50)]
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: [a.settle(t, "a", 0.1, 1.0) for t in tickets])
        await a.flush()
        snap = await a.snapshot(DAILY_10, 2.0)
        assert snap.in_flight == 0.0 and snap.spent[DAILY_10[0]] == pytest.approx(5.0)

    run(shared_redis, 1, body)


def test_random_interleavings_match_the_embedded_store(shared_redis: RedisServer) -> None:
    """One gateway: the Redis store answers every reservation as the embedded store does."""
    rng = random.Random(7)
    limits = (Limit(TOTAL, HOUR, 3.0), Limit("a", DAY, 5.0), Limit(TOTAL, DAY, 8.0))

    async def body(redis_store: RedisGuardStore) -> None:
        embedded = EmbeddedState(SqliteGuardStore(None))
        now = 0.0
        open_: list[tuple[int, int, float]] = []
        for _ in range(300):
            now += rng.choice([1.0, 60.0, 900.0])
            if open_ and rng.random() < 0.5:
                t1, t2, cost = open_.pop(rng.randrange(len(open_)))
                embedded.settle(t1, "a", cost, now)
                redis_store.settle(t2, "a", cost, now)
                await redis_store.flush()
                continue
            usd = rng.uniform(0.05, 1.5)
            r1 = await embedded.admit("a", usd, limits, now, True)
            r2 = await redis_store.admit("a", usd, limits, now, True)
            assert type(r1) is type(r2)
            if isinstance(r1, Refusal) and isinstance(r2, Refusal):
                assert r1.limit == r2.limit and r1.spent == pytest.approx(r2.spent)
            elif isinstance(r1, int) and isinstance(r2, int):
                open_.append((r1, r2, usd * rng.random()))

    run(shared_redis, 1, body, reservation_seconds=10 * DAY)  # the embedded store has no expiry


def test_reservations_asked_together_share_a_call_and_are_answered_in_order(
    shared_redis: RedisServer,
) -> None:
    async def body(a: RedisGuardStore) -> None:
        got = await asyncio.gather(*(a.admit("a", 1.0, DAILY_10, 0.0, True) for _ in range(15)))
        assert [type(g) for g in got] == [int] * 10 + [Refusal] * 5
        assert len(set(got[:10])) == 10
        assert [g.spent for g in got[10:] if isinstance(g, Refusal)] == [10.0] * 5

    run(shared_redis, 1, body)


def test_a_request_gone_before_its_answer_gives_its_reservation_back(
    shared_redis: RedisServer,
) -> None:
    async def body(a: RedisGuardStore) -> None:
        asking = asyncio.ensure_future(a.admit("a", 4.0, DAILY_10, 0.0, True))
        await asyncio.sleep(0)  # it has asked; the call goes out on the loop's next turn
        asking.cancel()
        await a.flush()
        assert (await a.snapshot(DAILY_10, 1.0)).in_flight == 0.0

    run(shared_redis, 1, body)


def test_a_connection_broken_by_a_redis_restart_is_not_an_outage(
    redis_server: RedisServer,
) -> None:
    async def body(a: RedisGuardStore) -> None:
        await _ticket(a, 1.0, DAILY_10, 0.0)  # a pooled connection, idle from here on
        redis_server.stop()
        redis_server.start()  # back before anyone asked: the idle connection is dead
        await _ticket(a, 1.0, DAILY_10, 1.0)  # retried once on a new connection
        assert a.health()["reachable"] is True

    run(redis_server, 1, body)


def _through(proxy: CuttingProxy, **kw: Any) -> RedisGuardStore:
    state = StateSettings(
        redis_url=proxy.url,
        key_prefix=f"x{uuid.uuid4().hex[:8]}:",
        timeout_seconds=5.0,
        retry_seconds=0.05,
        reservation_seconds=TTL,
        **kw,
    )
    return RedisGuardStore(state, lambda b: DAILY_10)


async def _settled(store: RedisGuardStore) -> None:
    """Until the store is up with nothing pending (bounded by the test's timeout)."""
    while not store.up or store.health()["pending_settlements"] or store._tasks:
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("lost", [1, 2])
def test_a_settlement_whose_reply_was_lost_counts_once(
    lost: int, shared_redis: RedisServer
) -> None:
    """The script ran, its reply never came back, the call was sent again: one spend, not two.

    Lost once, the store sends it again at once on a new connection; lost twice, it counts Redis as
    unreachable and sends the batch again when its probe finds Redis back.
    """

    async def main() -> None:
        proxy = await CuttingProxy(shared_redis.port).start()
        store = _through(proxy)
        await store.start()
        try:
            first = await _ticket(store, 1.0, DAILY_10, 0.0)
            store.settle(first, "a", 0.25, 1.0)  # the script is loaded: EVALSHA from here on
            await store.flush()
            second = await _ticket(store, 1.0, DAILY_10, 2.0)
            proxy.cut_replies_to(store._settle.sha.encode(), times=lost)
            store.settle(second, "a", 0.5, 3.0)
            store.settle(0, "a", 2.0, 3.0)  # let through while Redis was away: an id of its own
            await store.flush()
            await _settled(store)
            assert proxy.cuts == lost
            snap = await store.snapshot(DAILY_10, 4.0)
            assert snap.spent[DAILY_10[0]] == pytest.approx(2.75) and snap.in_flight == 0.0
        finally:
            await store.close()
            await proxy.close()

    asyncio.run(main())


def test_a_reservation_whose_reply_was_lost_is_held_once(shared_redis: RedisServer) -> None:
    async def main() -> None:
        proxy = await CuttingProxy(shared_redis.port).start()
        store = _through(proxy)
        await store.start()
        try:
            await _ticket(store, 1.0, DAILY_10, 0.0)  # the script is loaded: EVALSHA from here on
            proxy.cut_replies_to(store._reserve.sha.encode())
            ticket = await _ticket(store, 3.0, DAILY_10, 1.0)  # redis-py sends it again at once
            assert proxy.cuts == 1
            assert (await store.snapshot(DAILY_10, 2.0)).in_flight == 4.0  # not 7
            store.settle(ticket, "a", 3.0, 3.0)
            await store.flush()
            assert (await store.snapshot(DAILY_10, 4.0)).in_flight == 1.0
        finally:
            await store.close()
            await proxy.close()

    asyncio.run(main())


def test_close_leaves_no_task_behind_even_when_redis_fails_as_it_flushes(
    redis_server: RedisServer,
) -> None:
    async def main() -> None:
        state = StateSettings(
            redis_url=redis_server.url, key_prefix="z:", timeout_seconds=5.0, retry_seconds=0.05
        )
        store = RedisGuardStore(state, lambda b: DAILY_10)
        await store.start()
        ticket = await _ticket(store, 1.0, DAILY_10, 0.0)
        redis_server.stop()
        store.settle(ticket, "a", 1.0, 1.0)  # its call fails as close() flushes: a probe starts
        await store.close()
        others = asyncio.all_tasks() - {asyncio.current_task()}
        assert not others, others  # a task left pending is destroyed with the loop

    asyncio.run(main())


def test_a_waiting_settlement_rides_along_with_the_next_reservation(
    shared_redis: RedisServer,
) -> None:
    async def body(a: RedisGuardStore, b: RedisGuardStore) -> None:
        ticket = await _ticket(a, 6.0, DAILY_10, 0.0)
        a.settle(ticket, "a", 1.0, 1.0)  # queued; the reservation below carries it
        await _ticket(a, 8.0, DAILY_10, 2.0)  # fits only once the 6.0 held became 1.0 spent
        snap = await b.snapshot(DAILY_10, 3.0)
        assert snap.spent[DAILY_10[0]] == 9.0 and snap.in_flight == 8.0
        await a.flush()
        assert (await b.snapshot(DAILY_10, 3.0)).spent[DAILY_10[0]] == 9.0  # not sent twice

    run(shared_redis, 2, body)


def test_settlements_riding_on_a_reservation_whose_reply_was_lost_count_once(
    shared_redis: RedisServer,
) -> None:
    """Their batch goes again as it was (its id with it) once Redis answers: one spend, not two."""

    async def main() -> None:
        proxy = await CuttingProxy(shared_redis.port).start()
        store = _through(proxy)
        await store.start()
        try:
            first = await _ticket(store, 1.0, DAILY_10, 0.0)  # the script is loaded
            store.settle(first, "a", 0.25, 1.0)  # queued: the next reservation carries it
            proxy.cut_replies_to(store._reserve.sha.encode(), times=2)  # and its second try
            with pytest.raises(StoreUnreachable):
                await store.admit("a", 2.0, DAILY_10, 2.0, True)
            assert store.health()["pending_settlements"] >= 1
            await _settled(store)
            assert proxy.cuts == 2
            snap = await store.snapshot(DAILY_10, 3.0)
            assert snap.spent[DAILY_10[0]] == pytest.approx(0.25) and snap.in_flight == 0.0
        finally:
            await store.close()
            await proxy.close()

    asyncio.run(main())


@pytest.mark.parametrize("kind", ["embedded", "redis"])
def test_both_stores_sum_spend_close_in_time_into_one_window_entry(
    kind: str, shared_redis: RedisServer
) -> None:
    """Spend within window/1000 s of an entry's first joins it and leaves with its newest: a
    window holds ~1,000 entries however many batches a day sees (Redis kept one per batch)."""
    hourly = Limit("a", HOUR, 5.0)  # 3.6 s a bucket
    limits = (hourly, *DAILY_10)  # 86.4 s a bucket

    async def body(store: GuardState) -> None:
        tickets = [await _ticket(store, 0.5, limits, 0.0) for _ in range(4)]
        for ticket, ts in zip(tickets, [0.0, 1.0, 2.0, 5.0], strict=True):
            store.settle(ticket, "a", 1.0, ts)  # a batch each
            if isinstance(store, RedisGuardStore):
                await store.flush()
        if isinstance(store, RedisGuardStore):
            client = Redis.from_url(shared_redis.url)
            try:
                assert await client.llen(store.window_key(hourly)) == 2  # 0-2 s, then 5 s
                assert await client.llen(store.window_key(DAILY_10[0])) == 1
            finally:
                await client.aclose()
        spent = [(await store.snapshot(limits, HOUR + t)).spent[hourly] for t in (1.5, 2.5, 5.5)]
        assert spent == [4.0, 1.0, 0.0]  # the first entry goes with its newest spend (2 s)
        daily = [(await store.snapshot(limits, DAY + t)).spent[DAILY_10[0]] for t in (4.0, 5.5)]
        assert daily == [4.0, 0.0]

    if kind == "redis":
        run(shared_redis, 1, body)
    else:
        asyncio.run(body(EmbeddedState(SqliteGuardStore(None))))


def test_spend_after_a_window_list_expired_does_not_count_its_old_total(
    shared_redis: RedisServer,
) -> None:
    """Redis expires a window's list a minute after its width without writes; its running total
    lives in `sums`, which does not expire. Spend settled next, before anything read the window,
    once added to that stale total, so the budget counted spend long gone (and tripped early)."""
    hourly = Limit("a", HOUR, 5.0)

    async def body(a: RedisGuardStore) -> None:
        ticket = await _ticket(a, 1.0, DAILY_10, 0.0)
        a.settle(ticket, "a", 1.0, 0.0)
        await a.flush()
        key = a.window_key(hourly)
        client = Redis.from_url(shared_redis.url)
        try:  # what Redis does an hour and a minute later, now
            assert await client.pexpire(key, 1)
            while await client.exists(key):
                await asyncio.sleep(0.005)
        finally:
            await client.aclose()
        # Two hours on: a request checked against the day only (the hourly window is not read).
        ticket = await _ticket(a, 0.5, DAILY_10, 2 * HOUR)
        a.settle(ticket, "a", 0.5, 2 * HOUR)
        await a.flush()
        snap = await a.snapshot((hourly, *DAILY_10), 2 * HOUR + 1)
        assert snap.spent[hourly] == 0.5
        assert snap.spent[DAILY_10[0]] == 1.5  # the day's window did not expire

    run(shared_redis, 1, body)
