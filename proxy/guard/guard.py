"""The spend guard on the request path: admit (reserve) before forwarding, settle after recording."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from driftgate.proxy.errors import Dialect, GatewayError
from driftgate.proxy.guard.estimate import PriceMemo, estimate_usd
from driftgate.proxy.guard.ledger import DAY, HOUR, TOTAL, Halt, Limit
from driftgate.proxy.guard.settings import GuardSettings
from driftgate.proxy.guard.state import (
    NO_RESERVATION,
    EmbeddedState,
    GuardState,
    Refusal,
    StoreUnreachable,
)
from driftgate.proxy.observe.records import GUARD_HALTED, GUARD_UNAVAILABLE
from driftgate.proxy.templates.loader import TemplateSet

log = logging.getLogger("driftgate.guard")
UNPRICED_NAMED = 1000  # models named once each as unpriced; client-chosen names stay bounded
GUARD_HEADER = "x-driftgate-guard"
# A Ticket made from a tuple of its fields: its generated __new__ is a Python call per request.
_make: Any = tuple.__new__


class GuardRefused(GatewayError):
    """The spend guard refused a request before it was forwarded (recorded with `outcome`)."""

    outcome = GUARD_HALTED
    reason = ""  # why, in words that stay the same for every request it refuses (recorded)


class GuardHalted(GuardRefused):
    """The spend guard stopped forwarding: a 503 that the SDKs are told not to retry."""

    outcome = GUARD_HALTED
    status = 503
    anthropic_type = "api_error"
    openai_type = "server_error"
    openai_code = "spend_guard_halted"
    # Both official SDKs honour x-should-retry: a halt is not a blip to retry through.
    headers = {"x-should-retry": "false"}


class GuardStoreUnreachable(GuardRefused):
    """The guard's shared store (Redis) cannot be reached and [state] fail = "closed"."""

    outcome = GUARD_UNAVAILABLE
    status = 503
    anthropic_type = "api_error"
    openai_type = "server_error"
    openai_code = "spend_guard_unavailable"


class Ticket(NamedTuple):
    """A reservation held by one request until it is settled (a tuple: made on every request)."""

    id: int
    backend: str
    reserved: float


def dollars(amount: float) -> str:
    """Dollars to the cent, or to two significant digits below a cent (never a $0.00 budget)."""
    if amount == 0 or abs(amount) >= 0.01:
        return f"${amount:.2f}"
    return f"${amount:.2g}"


def _limits(settings: GuardSettings) -> Mapping[str, tuple[Limit, ...]]:
    total = [
        Limit(TOTAL, window, usd)
        for window, usd in ((HOUR, settings.hourly_usd), (DAY, settings.daily_usd))
        if usd
    ]
    per: dict[str, tuple[Limit, ...]] = {}
    for name, budget in settings.backends.items():
        own = [
            Limit(name, window, usd)
            for window, usd in ((HOUR, budget.hourly_usd), (DAY, budget.daily_usd))
            if usd
        ]
        per[name] = (*own, *total)
    per[TOTAL] = tuple(total)
    return per


def budget_table(settings: GuardSettings) -> Callable[[str], tuple[Limit, ...]]:
    """The budgets a request to a backend counts against, as a function of the backend."""
    table = _limits(settings)
    total = table[TOTAL]
    return lambda backend: table.get(backend, total)


class SpendGuard:
    """Budgets per window for every backend and in total, and a rule on response headers."""

    def __init__(
        self,
        settings: GuardSettings,
        store: GuardState,
        wall: Callable[[], float],
        on_state: Callable[[str], None] | None = None,
        *,
        fail_open: bool = True,
    ) -> None:
        self.settings = settings
        self._on_state = on_state  # told "ok" | "warn" | "halted" when that changes (a gauge)
        self._shown: str | None = None
        self.store = store
        self.wall = wall
        self.enabled = settings.enabled
        self._limits = _limits(settings)
        self._total = self._limits[TOTAL]
        self._halting = settings.action == "halt"
        embedded = store if isinstance(store, EmbeddedState) else None
        self._admit_now = embedded.admit_now if embedded is not None else None
        # Stores that take the guard's (ticket, usd) pairs as they are: no list made per batch.
        self._settle_at = getattr(store, "settle_at", None)
        self._header = settings.header.lower() if settings.header else None
        self._values = frozenset(v.lower() for v in settings.header_values)
        self._warned: set[str] = set()
        self._unpriced: set[str] = set()  # models already named as unpriced (bounded)
        self._prices = PriceMemo()
        self.fail_open = fail_open  # a shared store that cannot answer lets requests through
        self.unguarded = 0  # requests let through unguarded while the store was unreachable

    def limits_for(self, backend: str) -> tuple[Limit, ...]:
        """The budgets a request to `backend` counts against."""
        return self._limits.get(backend, self._limits[TOTAL])

    async def admit(
        self,
        raw_size: int,
        body: dict[str, Any],
        backend: str,
        model: str,
        dialect: Dialect,
        templates: TemplateSet,
        usd: float | None = None,
    ) -> Ticket | None:
        """Reserve the request's estimated cost, or raise GuardHalted when the guard halts it.

        `usd` given: reserve that instead of an estimate (0 for a request the guard cannot price,
        proxy/other.py: refused while halted, and what its record prices still settles).
        """
        if not self.enabled:
            return None
        now = self.wall()
        if usd is None:
            usd = estimate_usd(
                raw_size,
                body,
                model,
                dialect,
                templates,
                self.settings.default_max_tokens,
                self._prices,
            )
            if usd == 0.0 and model not in self._unpriced and len(self._unpriced) < UNPRICED_NAMED:
                self._unpriced.add(model)
                log.warning(
                    "spend guard: model %r has no price in the templates, so its requests count "
                    "$0 against the budgets; add its prices in a template overlay (templates_dir) "
                    "to guard it",
                    model,
                )
        halting = self._halting
        limits = self._limits.get(backend, self._total)
        try:
            at_once = self._admit_now
            if at_once is not None:  # the embedded store: no coroutine to make and drive
                got = at_once(backend, usd, limits, now, halting)
            else:
                got = await self.store.admit(backend, usd, limits, now, halting)
            if isinstance(got, Refusal):
                limit, spent = got.limit, got.spent
                reason = (  # the request's own estimate too: alone it may be what breaks it
                    f"the {limit.name} of {dollars(limit.usd)} is reached "
                    f"({dollars(spent)} spent or in flight, and a request estimated at up to "
                    f"{dollars(usd)})"
                )
                if halting:
                    raise self._halted(self.trip(reason, now))
                self._warn(reason, limit.name)
                got = await self.store.admit(backend, usd, (), now, False)
        except StoreUnreachable:
            if not self.fail_open:
                raise _unreachable() from None
            self.unguarded += 1
            # Its cost is still recorded when it settles (once the store answers again).
            return Ticket(NO_RESERVATION, backend, usd)
        if isinstance(got, Halt):  # halted here or by another gateway sharing the store
            self._show("halted")
            raise self._halted(got)
        assert isinstance(got, int)
        if not self._warned and self._shown != "ok":
            self._show("ok")
        ticket: Ticket = _make(Ticket, (got, backend, usd))
        return ticket

    def trip(self, reason: str, now: float) -> Halt:
        """Halt (or warn) for `reason`; the halt lifts after the cooldown, or on resume."""
        if self.settings.action == "warn":
            self._warn(reason, reason)
            return Halt(reason, now, now)
        minutes = self.settings.cooldown_minutes
        halt = Halt(reason, now, now + minutes * 60 if minutes else None)
        self.store.halt(halt)
        self._show("halted")
        log.warning("spend guard: halted: %s; %s", reason, _how_to_resume(halt, now))
        return halt

    def settle(self, ticket: Ticket | None, usd: float | None) -> None:
        """The request is over: replace its reservation by what it cost (None: unknown, 0)."""
        if ticket is not None:
            self.store.settle(ticket.id, ticket.backend, usd or 0.0, self.wall())

    def settle_many(self, settled: Sequence[tuple[Ticket, float | None]]) -> None:
        """`settle` for a batch of requests (the recorder's thread), one store call for all."""
        if settled:
            now = self.wall()
            if self._settle_at is not None:  # the embedded store takes the pairs as they are
                self._settle_at(settled, now)
                return
            self.store.settle_many([(t[0], t[1], usd or 0.0, now) for t, usd in settled])

    def release(self, ticket: Ticket | None) -> None:
        """The request never reached an upstream: drop its reservation."""
        if ticket is not None:
            self.store.release(ticket.id, ticket.backend)

    def check_headers(self, headers: Mapping[str, str]) -> str | None:
        """Trip the guard when an answer carries the configured header value; the reason or None."""
        if self._header is None:
            return None
        value = headers.get(self._header)
        if value is None or (self._values and value.strip().lower() not in self._values):
            return None
        reason = f"the upstream answered {self.settings.header}: {value.strip()[:80]}"
        self.trip(reason, self.wall())
        return reason

    async def resume(self) -> bool:
        """Lift the halt (spend so far stops counting); True if one was in force."""
        now = self.wall()
        try:
            was = await self.store.halted(now) is not None
            await self.store.resume(now)
        except StoreUnreachable:
            raise _unreachable() from None
        self._warned.clear()
        self._show("ok")
        log.warning("spend guard: resumed by request; spend so far no longer counts")
        return was

    async def state(self) -> dict[str, Any]:
        """What /health, /metrics and `driftgate top` show (no secrets in it)."""
        if not self.enabled:
            return {"enabled": False}
        now = self.wall()
        every = tuple({*self.limits_for(TOTAL), *(x for v in self._limits.values() for x in v)})
        store = self.store.health()
        if store is not None:
            fail = "open" if self.fail_open else "closed"
            store = {**store, "fail": fail, "unguarded_requests": self.unguarded}
        try:
            snap = await self.store.snapshot(every, now)
        except StoreUnreachable:
            return {
                "enabled": True,
                "action": self.settings.action,
                "state": "store_unreachable",
                "store": store,
            }
        halt = snap.halt
        # Another gateway sharing the store may have halted or resumed: the gauge follows.
        if halt is not None:
            self._show("halted")
        elif not self._warned:
            self._show("ok")
        limits = [
            {
                "name": limit.name,
                "backend": limit.backend or None,
                "window_hours": limit.window / HOUR,
                "usd": limit.usd,
                "spent_usd": round(snap.spent[limit], 6),
            }
            for limit in every
        ]
        limits.sort(key=lambda d: (d["backend"] or "", d["window_hours"]))
        doc: dict[str, Any] = {
            "enabled": True,
            "action": self.settings.action,
            "state": "halted" if halt else "ok",
            "in_flight_usd": round(snap.in_flight, 6),
            "limits": limits,
        }
        if store is not None:
            doc["store"] = store
        if halt is not None:
            doc["reason"] = halt.reason
            doc["since"] = halt.since
            doc["until"] = halt.until
            doc["resume"] = _how_to_resume(halt, now)
        return doc

    def _halted(self, halt: Halt) -> GuardHalted:
        refused = GuardHalted(
            f"driftgate's spend guard has halted requests: {halt.reason}. "
            f"{_how_to_resume(halt, self.wall())}"
        )
        refused.reason = halt.reason
        return refused

    def _show(self, state: str) -> None:
        if state != self._shown and self._on_state is not None:
            self._shown = state
            self._on_state(state)

    def _warn(self, reason: str, key: str) -> None:
        self._show("warn")
        if key not in self._warned:  # once per limit until a resume, not once per request
            self._warned.add(key)
            log.warning("spend guard: %s (action = warn: requests still go through)", reason)


UNREACHABLE_MESSAGE = (
    "driftgate's spend guard cannot reach its store (Redis, [state] redis_url) and is set to "
    'fail closed ([state] fail = "closed"): requests are refused until the store answers again.'
)


def _unreachable() -> GuardStoreUnreachable:
    refused = GuardStoreUnreachable(UNREACHABLE_MESSAGE)
    refused.reason = 'the guard\'s store (Redis) does not answer and [state] fail = "closed"'
    return refused


def _how_to_resume(halt: Halt, now: float) -> str:
    if halt.until is None:
        return "Run `driftgate resume` to continue."
    minutes = max(0.0, (halt.until - now) / 60)
    return f"It lifts by itself in {minutes:.0f} min, or run `driftgate resume` to continue now."
