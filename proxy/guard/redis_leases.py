"""Budget leases of the Redis guard store: a gateway's slice of a budget, spent without a round trip.

Under concurrency a reservation call also asks for a lease: a reservation made under the gateway's
own id, for many requests' worth, granted by the same script only if it fits every budget (and at
most an eighth of the room left, so near the end of a budget leases shrink, then stop). Requests
that fit the lease are admitted here, with no call; each one's settlement gives its share of the
lease back in Redis, so a lease holds there what is unspent plus what its requests in flight
reserved, and the bound (spend over a budget at most what reservations in flight underestimate)
still holds with leases counted as reservations.

A lease is drawn from for `seconds` at most (the guard's clock, and a timer on the loop), which is
how late a halt set by another gateway can be noticed here; then, or when it is used up, on a halt,
a reload or an outage, it is given up: its unspent part goes back at once, the rest as its requests
settle, all of it with the last one. Everything here runs on the event loop's thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

from driftgate.proxy.guard.ledger import Limit

LEASE_SECONDS = 0.5
ALL = -1.0  # what a give-back returns to Redis: everything the lease still holds there
# A lease's size in requests like the one that asked: the least worth holding, the first, the most.
LEASE_REQUESTS = (16, 64, 4096)
Leasing = Literal["busy", "always", "never"]  # when leases are asked for (see Leases)


def add_give(gives: dict[int, float], lease: tuple[int, float]) -> None:
    """Add what one settlement gives back to its lease (ALL: everything) to a batch's `gives`:
    one amount per lease however many of its requests the batch settles."""
    lease_id, back = lease
    got = gives.get(lease_id, 0.0)
    gives[lease_id] = ALL if back == ALL or got == ALL else got + back


class Lease:
    """A slice of the budget this gateway holds in Redis and spends locally, request by request."""

    __slots__ = ("backend", "id", "left", "limits", "out", "retired", "timer", "until", "usd")

    def __init__(
        self, lease_id: int, backend: str, limits: tuple[Limit, ...], usd: float, until: float
    ) -> None:
        self.id = lease_id
        self.backend = backend
        self.limits = limits  # the budgets it was granted under
        self.usd = usd  # granted
        self.left = usd  # not yet drawn
        self.out = 0  # requests drawn from it and not yet settled
        self.until = until  # the guard's clock: drawn from until then
        self.retired = False
        self.timer: asyncio.TimerHandle | None = None


class LeaseAsk(NamedTuple):
    """A lease asked for in a reservation call."""

    id: int
    backend: str
    limits: tuple[Limit, ...]
    usd: float  # wanted
    least: float  # not worth holding below this


class Leases:
    """This gateway's leases, one per backend, and the requests drawn from them.

    `leasing`: ask for leases when requests ask concurrently ("busy"), with every reservation call
    ("always", for tests), or never. `give_back(lease_id, usd)` queues a settlement that gives back
    `usd` to a lease in Redis (ALL: everything it holds).
    """

    def __init__(
        self,
        leasing: Leasing,
        seconds: float,
        new_id: Callable[[], int],
        give_back: Callable[[int, float], None],
    ) -> None:
        self.leasing = leasing
        self.seconds = seconds
        self._new_id = new_id
        self._give_back = give_back
        self._current: dict[str, Lease] = {}  # backend -> the lease its requests draw from
        self._drawn: dict[int, tuple[Lease, float]] = {}  # a drawn request's id -> lease, usd
        self._size: dict[str, int] = {}  # backend -> requests its next lease is asked for
        self._asked: set[str] = set()  # backends with a lease asked for in a call out
        self._renew: set[str] = set()  # backends whose last lease was well used: ask again at once

    @property
    def holding(self) -> bool:
        """Whether any lease is held now (a request may be drawn from one)."""
        return bool(self._current)

    def draw(
        self,
        ticket: int,
        backend: str,
        usd: float,
        limits: tuple[Limit, ...],
        now: float,
    ) -> bool:
        """Admit request `ticket` from its backend's lease if it fits; a lease it does not fit
        (spent, expired) is given up, so Redis judges the request as if there had been none."""
        lease = self._current.get(backend)
        if lease is None:  # (a warn-mode request draws too: a lease is never granted while halted)
            return False
        if lease.limits is not limits and lease.limits != limits:
            return False
        if usd <= lease.left and now <= lease.until:
            lease.left -= usd
            lease.out += 1
            self._drawn[ticket] = (lease, usd)
            return True
        self.give_up(lease, used_up=usd > lease.left)
        return False

    def wanted(
        self, backend: str, usd: float, limits: tuple[Limit, ...], busy: bool
    ) -> LeaseAsk | None:
        """The lease to ask for along with this request, if any: when requests are busy (or the
        last lease was used up), for a backend with budgets and no lease held or asked for."""
        if (
            self.leasing == "never"
            or not (busy or self.leasing == "always" or backend in self._renew)
            or not limits
            or usd <= 0
            or backend in self._current
            or backend in self._asked
        ):
            return None
        self._renew.discard(backend)
        self._asked.add(backend)
        size = self._size.get(backend, LEASE_REQUESTS[1])
        return LeaseAsk(self._new_id(), backend, limits, usd * size, usd * LEASE_REQUESTS[0])

    def granted(
        self,
        wants: list[LeaseAsk],
        grants: Sequence[bytes | float] | None,
        now: float,
        loop: asyncio.AbstractEventLoop | None,
    ) -> None:
        """The call that asked for `wants` answered (`grants`: USD each, as Redis writes a number
        or as a float) or failed (None: any it may have granted is given back whole); with no
        loop to time them, none is kept."""
        for i, want in enumerate(wants):
            self._asked.discard(want.backend)
            usd = 0.0 if grants is None else float(grants[i])
            if grants is None or (usd > 0 and loop is None):
                self._give_back(want.id, ALL)
                continue
            if usd <= 0:
                continue
            assert loop is not None
            old = self._current.get(want.backend)
            if old is not None:
                self.give_up(old, used_up=False)
            lease = Lease(want.id, want.backend, want.limits, usd, now + self.seconds)
            self._current[want.backend] = lease
            lease.timer = loop.call_later(self.seconds, self.give_up, lease, False)

    def give_up(self, lease: Lease, used_up: bool) -> None:
        """Stop drawing from `lease` and give back what it holds unspent; what its requests in
        flight hold goes back as each settles (all of it with the last one)."""
        if lease.retired:
            return
        lease.retired = True
        backend = lease.backend
        if self._current.get(backend) is lease:
            del self._current[backend]
        if lease.timer is not None:
            lease.timer.cancel()
        size = self._size.get(backend, LEASE_REQUESTS[1])
        if used_up:  # the next lease is asked for at once, twice as large
            self._size[backend] = min(size * 2, LEASE_REQUESTS[2])
            self._renew.add(backend)
        elif lease.left > lease.usd / 2:  # half of it unspent: the next is half as large
            self._size[backend] = max(size // 2, LEASE_REQUESTS[0])
        else:  # well used when it ended: the next is asked for at once
            self._renew.add(backend)
        unused, lease.left = lease.left, 0.0
        if lease.out == 0:
            self._give_back(lease.id, ALL)
        elif unused > 0:
            self._give_back(lease.id, unused)

    def give_up_all(self) -> None:
        """Every lease (a halt, a reload, an outage, closing)."""
        for lease in list(self._current.values()):
            self.give_up(lease, used_up=False)

    def forget(self) -> None:
        """Drop every lease without giving anything back (as a gateway that dies would)."""
        for lease in self._current.values():
            lease.retired = True
            if lease.timer is not None:
                lease.timer.cancel()
        self._current.clear()

    def settled(self, ticket: int) -> tuple[int, float] | None:
        """The lease request `ticket` was drawn from and what its settlement gives back to it
        (ALL: everything, its last request settled), or None: not drawn from a lease."""
        got = self._drawn.pop(ticket, None)
        if got is None:
            return None
        lease, usd = got
        lease.out -= 1
        if lease.retired and lease.out == 0:
            return lease.id, ALL
        return lease.id, usd
