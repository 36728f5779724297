"""Budget leases of the Redis guard store, against a real redis-server.

Under concurrency a gateway holds a slice of the budget in Redis (a lease) and admits requests
from it without a round trip. These tests take leases on every reservation (`leasing="always"`)
so that one request at a time exercises them; the guard's clock is passed in, so a lease's
lifetime is exact.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from driftgate.proxy.guard.ledger import DAY, HOUR, TOTAL, Halt, Limit, SqliteGuardStore
from driftgate.proxy.guard.redis_leases import Leasing
from driftgate.proxy.guard.redis_store import RedisGuardStore
from driftgate.proxy.guard.settings import StateSettings
from driftgate.proxy.guard.state import EmbeddedState, Refusal, StoreUnreachable
from tests.fakes.cutting_proxy import CuttingProxy
from tests.fakes.redis_server import RedisServer

TTL = 60.0
LIFE = 30.0  # a lease's lifetime: by the guard's clock here; the loop's timer never gets to it
ROOMY = (Limit(TOTAL, DAY, 100.0),)


def run(
    server: RedisServer,
    leasing: list[Leasing],
    body: Callable[..., Awaitable[None]],
    ttl: float = TTL,
) -> None:
    """Run `body(*stores)` with one started store per entry of `leasing`, on one fresh prefix."""

    async def main() -> None:
        state = StateSettings(
            redis_url=server.url,
            key_prefix=f"l{uuid.uuid4().hex[:8]}:",
            timeout_seconds=5.0,
            reservation_seconds=ttl,
        )
        stores = [
            RedisGuardStore(state, lambda b: ROOMY, leasing=how, lease_seconds=LIFE)
            for how in leasing
        ]
        for s in stores:
            await s.start()
        try:
            await body(*stores)
        finally:
            for s in stores:
                await s.close()

    asyncio.run(main())


def _at_once(coro: Coroutine[Any, Any, Any]) -> Any:
    """The answer of `coro` if it comes without waiting for anything (no round trip to Redis)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise AssertionError("it waited for Redis")


def test_requests_within_a_lease_are_answered_without_a_round_trip(
    shared_redis: RedisServer,
) -> None:
    async def body(a: RedisGuardStore, b: RedisGuardStore) -> None:
        first = await a.admit("a", 0.5, ROOMY, 0.0, True)  # asks Redis, and takes a lease
        assert isinstance(first, int)
        held = (await b.snapshot(ROOMY, 0.0)).in_flight
        assert 0.5 + 16 * 0.5 <= held <= 0.5 + 100 / 8  # the other gateway counts the lease
        drawn = [_at_once(a.admit("a", 0.5, ROOMY, 0.1, True)) for _ in range(10)]
        assert all(isinstance(t, int) for t in drawn) and len({first, *drawn}) == 11
        assert (await b.snapshot(ROOMY, 0.1)).in_flight == held  # drawn from the lease
        for ticket in drawn:
            a.settle(ticket, "a", 0.25, 0.2)
        a.settle(first, "a", 0.25, 0.2)
        await a.flush()
        snap = await b.snapshot(ROOMY, 0.3)
        assert snap.spent[ROOMY[0]] == pytest.approx(held - 11 * 0.5 + 11 * 0.25)
        assert snap.in_flight == pytest.approx(held - 11 * 0.5)  # the lease's unspent part
        await a.close()  # gives the lease back
        snap = await b.snapshot(ROOMY, 0.4)
        assert snap.in_flight == 0.0 and snap.spent[ROOMY[0]] == pytest.approx(11 * 0.25)

    run(shared_redis, ["always", "never"], body)


def test_a_warn_mode_gateway_leases_too(shared_redis: RedisServer) -> None:
    """action = "warn" (requests that do not respect a halt) takes and draws leases: a request
    that fits one fits every budget, so there is nothing to warn of."""

    async def body(a: RedisGuardStore, b: RedisGuardStore) -> None:
        first = await a.admit("a", 0.5, ROOMY, 0.0, False)
        assert isinstance(first, int)
        held = (await b.snapshot(ROOMY, 0.0)).in_flight
        assert held >= 0.5 + 16 * 0.5  # the lease came with it
        drawn = [_at_once(a.admit("a", 0.5, ROOMY, 0.1, False)) for _ in range(5)]
        assert all(isinstance(t, int) for t in drawn)
        assert (await b.snapshot(ROOMY, 0.1)).in_flight == held

    run(shared_redis, ["always", "never"], body)


def test_a_batch_drawn_from_a_lease_costs_redis_one_entry_however_many_it_settles(
    shared_redis: RedisServer,
) -> None:
    """A batch goes summed: one spend entry per window and time, one id remembered, one give-back
    to the lease, not one of each per request (Redis's work and memory grew with requests)."""

    async def body(a: RedisGuardStore) -> None:
        first = await a.admit("a", 0.5, ROOMY, 0.0, True)  # takes a lease
        assert isinstance(first, int)
        drawn = [_at_once(a.admit("a", 0.5, ROOMY, 0.1, True)) for _ in range(20)]
        held = (await a.snapshot(ROOMY, 0.1)).in_flight
        a.settle_many([(t, "a", 0.25, 0.2) for t in drawn])  # one recorder batch, at one time
        await a.flush()
        client = Redis.from_url(shared_redis.url)
        try:
            assert await client.llen(a.window_key(ROOMY[0])) == 1
            assert await client.zcard(a._settled) == 1
        finally:
            await client.aclose()
        snap = await a.snapshot(ROOMY, 0.3)
        assert snap.spent[ROOMY[0]] == pytest.approx(held - 20 * 0.5 + 20 * 0.25)
        assert snap.in_flight == pytest.approx(held - 20 * 0.5)  # each gave its share back

    run(shared_redis, ["always"], body)


def test_one_request_at_a_time_takes_no_lease_unless_told_to(shared_redis: RedisServer) -> None:
    async def body(a: RedisGuardStore, b: RedisGuardStore) -> None:
        await a.admit("a", 0.5, ROOMY, 0.0, True)  # "busy": alone, so one reservation only
        assert (await b.snapshot(ROOMY, 0.0)).in_flight == 0.5
        together = await asyncio.gather(*(a.admit("a", 0.5, ROOMY, 0.0, True) for _ in range(3)))
        assert all(isinstance(t, int) for t in together)
        assert (await b.snapshot(ROOMY, 0.0)).in_flight == 2.0
        # Requests asked together: the next call asks for a lease, drawn from from then on.
        assert isinstance(await a.admit("a", 0.5, ROOMY, 0.0, True), int)
        assert (await b.snapshot(ROOMY, 0.0)).in_flight > 2.5
        assert isinstance(_at_once(a.admit("a", 0.5, ROOMY, 0.0, True)), int)

    run(shared_redis, ["busy", "never"], body)


def test_a_lease_is_given_back_when_it_expires_and_a_halt_elsewhere_is_then_seen(
    shared_redis: RedisServer,
) -> None:
    async def body(a: RedisGuardStore, b: RedisGuardStore) -> None:
        assert isinstance(await a.admit("a", 0.5, ROOMY, 0.0, True), int)
        b.halt(Halt("stop", since=0.0, until=None))
        await b.flush()
        # Within the lease's lifetime the halt is not seen yet: the bound on how late it is.
        assert isinstance(_at_once(a.admit("a", 0.5, ROOMY, LIFE / 2, True)), int)
        halted = await a.admit("a", 0.5, ROOMY, LIFE + 0.01, True)
        assert halted == Halt("stop", 0.0, None)
        # The expired lease was given back in that call: only the two requests are held.
        assert (await b.snapshot(ROOMY, 1.0)).in_flight == pytest.approx(1.0)

    run(shared_redis, ["always", "never"], body)


def test_a_halt_here_stops_drawing_from_the_lease_at_once(shared_redis: RedisServer) -> None:
    async def body(a: RedisGuardStore) -> None:
        assert isinstance(await a.admit("a", 0.5, ROOMY, 0.0, True), int)
        a.halt(Halt("stop", since=0.0, until=None))
        await a.flush()
        assert await a.admit("a", 0.5, ROOMY, 0.1, True) == Halt("stop", 0.0, None)

    run(shared_redis, ["always"], body)


def test_a_gateway_that_dies_holding_a_lease_leaks_nothing_after_expiry(
    shared_redis: RedisServer,
) -> None:
    async def body(dead: RedisGuardStore, alive: RedisGuardStore) -> None:
        assert isinstance(await dead.admit("a", 0.5, ROOMY, 0.0, True), int)
        _at_once(dead.admit("a", 0.5, ROOMY, LIFE, True))  # drawn at the last moment
        assert (await alive.snapshot(ROOMY, 1.0)).in_flight > 1.0
        # The drawn request is covered for as long as a reservation made when it was drawn.
        assert (await alive.snapshot(ROOMY, LIFE + TTL - 0.01)).in_flight > 1.0
        assert (await alive.snapshot(ROOMY, LIFE + TTL)).in_flight == 0.0

    async def dying(dead: RedisGuardStore, alive: RedisGuardStore) -> None:
        try:
            await body(dead, alive)
        finally:
            dead.leases.forget()  # it died: nothing of it is given back

    run(shared_redis, ["always", "never"], dying)


def test_the_own_lease_never_refuses_what_the_budget_has_room_for(
    shared_redis: RedisServer,
) -> None:
    """One gateway spends the whole budget through leases: the request that does not fit its
    lease gives the lease back first, so refusals fall where the embedded store's do."""

    async def body(a: RedisGuardStore) -> None:
        admitted = 0
        while True:
            got = await a.admit("a", 0.0625, ROOMY, 0.0, True)
            if isinstance(got, Refusal):
                break
            admitted += 1
        assert admitted == 1600  # 100 / 0.0625, exactly
        assert got == Refusal(ROOMY[0], 100.0)

    run(shared_redis, ["always"], body)


@pytest.mark.parametrize("leasing", ["always", "busy"])
def test_answers_match_the_embedded_store_with_leases(
    leasing: Leasing, shared_redis: RedisServer
) -> None:
    """Requests in bursts (asked together) and one by one, settled in any order: the same
    admissions and refusals as the embedded store, leases or not."""
    import random

    rng = random.Random(11)
    limits = (Limit(TOTAL, HOUR, 3.0), Limit("a", DAY, 5.0), Limit(TOTAL, DAY, 8.0))

    async def body(store: RedisGuardStore) -> None:
        embedded = EmbeddedState(SqliteGuardStore(None))
        now = 0.0
        open_: list[tuple[int, int, float]] = []
        for _ in range(120):
            now += rng.choice([0.001, 0.01, 1.0, 60.0, 900.0])
            if open_ and rng.random() < 0.4:
                for _ in range(rng.randint(1, len(open_))):
                    t1, t2, cost = open_.pop(rng.randrange(len(open_)))
                    embedded.settle(t1, "a", cost, now)
                    store.settle(t2, "a", cost, now)
                await store.flush()
                continue
            usds = [rng.choice([0.001, 0.01, 0.2, 1.5]) for _ in range(rng.randint(1, 4))]
            mine = [await embedded.admit("a", usd, limits, now, True) for usd in usds]
            theirs = await asyncio.gather(*(store.admit("a", u, limits, now, True) for u in usds))
            for usd, r1, r2 in zip(usds, mine, theirs, strict=True):
                assert type(r1) is type(r2), (r1, r2)
                if isinstance(r1, int) and isinstance(r2, int):
                    open_.append((r1, r2, usd * rng.random()))

    # Leases are taken, drawn from and given back, yet no answer differs: a refusal comes only
    # from Redis, after this gateway's lease went back. (Only one gateway: another's lease
    # would be room this one cannot use.)
    run(shared_redis, [leasing], body, ttl=10 * DAY)


# Steps: ("reserve", gateway, usd, share of it the request really costs, how many together),
# ("settle", pick), ("die", gateway), ("tick", seconds), as in test_redis_store's bound test.
steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("reserve"),
            st.integers(0, 2),
            st.floats(0.001, 3.0),
            st.floats(0, 1.5),
            st.integers(1, 5),
        ),
        st.tuples(st.just("settle"), st.integers(0, 1000)),
        st.tuples(st.just("die"), st.integers(0, 2)),
        st.tuples(st.just("tick"), st.sampled_from([0.01, LIFE, TTL / 2, TTL + 1])),
    ),
    min_size=1,
    max_size=30,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps, budget=st.floats(0.5, 50.0))
def test_three_gateways_with_leases_never_overspend_beyond_what_reservations_underestimate(
    shared_redis: RedisServer, steps: list[tuple[Any, ...]], budget: float
) -> None:
    """The bound holds with leases: what a lease holds counts as in flight for every gateway."""
    limits = (Limit(TOTAL, DAY, budget),)

    async def body(*gateways: RedisGuardStore) -> None:
        now = 0.0
        held: list[tuple[int, int, float, float, float]] = []  # gateway, ticket, usd, cost, at
        spent = under = 0.0
        for step in steps:
            if step[0] == "reserve":
                _, g, usd, share, together = step
                asked = [gateways[g].admit("a", usd, limits, now, True) for _ in range(together)]
                for got in await asyncio.gather(*asked):
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
                gateways[step[1]].leases.forget()  # nor is its lease given back
            elif step[0] == "tick":
                now += step[1]
            assert spent <= budget + under + 1e-9
            snap = await gateways[0].snapshot(limits, now)
            assert snap.spent[limits[0]] <= budget + under + 1e-9

    run(shared_redis, ["always", "always", "busy"], body)


def test_settlements_dropped_while_redis_is_away_still_give_their_lease_back(
    shared_redis: RedisServer,
) -> None:
    """Past `max_pending` settlements waiting for Redis, the oldest are dropped (their spend is
    lost, and counted); what they gave back to a lease is not: the lease goes back whole once
    Redis answers, not when it expires there."""

    async def body() -> None:
        proxy = await CuttingProxy(shared_redis.port).start()
        state = StateSettings(
            redis_url=proxy.url,
            key_prefix=f"l{uuid.uuid4().hex[:8]}:",
            timeout_seconds=5.0,
            retry_seconds=0.05,
            reservation_seconds=TTL,
        )
        a = RedisGuardStore(
            state, lambda b: ROOMY, leasing="always", lease_seconds=LIFE, max_pending=2
        )
        await a.start()
        try:
            first = await a.admit("a", 0.1, ROOMY, 0.0, True)  # asks Redis, and takes a lease
            assert isinstance(first, int)
            drawn = [_at_once(a.admit("a", 0.1, ROOMY, 0.1, True)) for _ in range(3)]
            assert (await a.snapshot(ROOMY, 0.1)).in_flight > 0.1
            proxy.go_away()
            with pytest.raises(StoreUnreachable):  # an outage: the lease is given up
                await a.admit("b", 0.1, ROOMY, 0.2, True)
            for ticket in [*drawn, first]:
                a.settle(ticket, "a", 0.05, 0.3)
            # Kept: the last two; dropped: the first settlements and what the outage queued before
            # them (the lease's unspent part, the failed call's release and lease).
            assert a.health()["pending_settlements"] == 2 and a.lost_settlements >= 3
            proxy.come_back()
            while not a.up:  # the probe finds it (bounded by the test's timeout)
                await asyncio.sleep(0.01)
            await a.flush()
            snap = await a.snapshot(ROOMY, 0.4)
            assert snap.in_flight == 0.0  # nothing held for a lease nobody draws from
            assert snap.spent[ROOMY[0]] == pytest.approx(2 * 0.05)  # the two kept
        finally:
            await a.close()
            await proxy.close()

    asyncio.run(body())
