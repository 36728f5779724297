"""The seam the spend guard awaits: `GuardState`, and the embedded SQLite store behind it.

A shared store answers over the network, so the guard's questions on the request path (may this
request go? is the guard halted? what is spent?) are coroutines. What the guard only tells the
store (settle, release, halt) returns at once: a shared store sends it in the background, so a
slow store never holds the recorder's thread or a response.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from driftgate.proxy.errors import ConfigError
from driftgate.proxy.guard.ledger import (
    GuardStore,
    Halt,
    Limit,
    SqliteGuardStore,
    guard_db_path,
)
from driftgate.proxy.guard.shared_ledger import SharedSqliteGuardStore

if TYPE_CHECKING:
    from driftgate.proxy.config import Config

NO_RESERVATION = 0  # the ticket of a request let through while the store was unreachable
Settlement = tuple[int, str, float, float]  # ticket, backend, usd it cost, when


class StoreUnreachable(Exception):
    """The guard's store did not answer in time (a shared store only)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A reservation that does not fit: the first limit it breaks and what that limit holds."""

    limit: Limit
    spent: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What /health shows: spend per limit (settled plus in flight), in flight, the halt."""

    spent: dict[Limit, float]
    in_flight: float
    halt: Halt | None


class GuardState(Protocol):
    """Spend, reservations and the halt as the guard uses them (embedded, or shared in Redis)."""

    kind: str

    async def admit(
        self, backend: str, usd: float, limits: tuple[Limit, ...], now: float, respect_halt: bool
    ) -> int | Refusal | Halt:
        """The halt in force (when `respect_halt`), else reserve `usd` if every limit has room.

        Raises StoreUnreachable when a shared store cannot answer.
        """
        ...

    def settle(self, ticket: int, backend: str, usd: float, now: float) -> None:
        """Replace reservation `ticket` by what it cost (from any thread; never blocks)."""
        ...

    def settle_many(self, settled: Sequence[Settlement]) -> None:
        """`settle` for a batch (the recorder's thread): an embedded store writes it at once."""
        ...

    def release(self, ticket: int, backend: str) -> None:
        """Drop reservation `ticket`: nothing was spent (never blocks)."""
        ...

    def halt(self, halt: Halt) -> None:
        """Stop forwarding until `halt.until` or a resume (never blocks)."""
        ...

    async def resume(self, now: float) -> None:
        """Lift the halt; spend before `now` no longer counts. Raises StoreUnreachable."""
        ...

    async def halted(self, now: float) -> Halt | None:
        """The halt in force at `now`, if any. Raises StoreUnreachable."""
        ...

    async def snapshot(self, limits: tuple[Limit, ...], now: float) -> Snapshot:
        """Spend against each of `limits`, in flight, and the halt. Raises StoreUnreachable."""
        ...

    def health(self) -> dict[str, Any] | None:
        """The store's own state for /health (None: embedded, nothing to say)."""
        ...

    def budgets(self, limits_for: Callable[[str], tuple[Limit, ...]]) -> None:
        """The budgets each backend counts against changed (a reload)."""
        ...

    async def start(self) -> None:
        """On the app's loop, before the first request."""
        ...

    async def close(self) -> None:
        """After the last request: send what is pending, release connections and files."""
        ...


def snapshot_of(
    store: GuardStore | SharedSqliteGuardStore, limits: tuple[Limit, ...], now: float
) -> Snapshot:
    """What a SQLite-backed store holds now: spend per limit, in flight, the halt."""
    spent = {limit: store.spent(limit.backend, limit.window, now) for limit in limits}
    return Snapshot(spent, store.in_flight(), store.halted(now))


class EmbeddedState:
    """The embedded store (SQLite and memory, one gateway): every answer is immediate."""

    kind = "embedded"

    def __init__(self, store: SqliteGuardStore) -> None:
        self.store = store

    async def admit(
        self, backend: str, usd: float, limits: tuple[Limit, ...], now: float, respect_halt: bool
    ) -> int | Refusal | Halt:
        return self.admit_now(backend, usd, limits, now, respect_halt)

    def admit_now(
        self, backend: str, usd: float, limits: tuple[Limit, ...], now: float, respect_halt: bool
    ) -> int | Refusal | Halt:
        """`admit`, answered at once: the guard calls it without a coroutine of its own."""
        store = self.store
        got = store.admit(backend, usd, limits, now, respect_halt)
        if isinstance(got, Limit):
            return Refusal(got, store.spent(got.backend, got.window, now))
        return got

    def settle(self, ticket: int, backend: str, usd: float, now: float) -> None:
        self.store.settle(ticket, usd, now)

    def settle_many(self, settled: Sequence[Settlement]) -> None:
        self.store.settle_many([(t, usd, now) for t, _, usd, now in settled])

    def settle_at(self, settled: Sequence[tuple[Sequence[Any], float | None]], now: float) -> None:
        """`settle_many` of the guard's (ticket, usd or None) pairs, all at `now`, as they are."""
        self.store.settle_at(settled, now)

    def release(self, ticket: int, backend: str) -> None:
        self.store.release(ticket)

    def halt(self, halt: Halt) -> None:
        self.store.halt(halt)

    async def resume(self, now: float) -> None:
        self.store.resume(now)

    async def halted(self, now: float) -> Halt | None:
        return self.store.halted(now)

    async def snapshot(self, limits: tuple[Limit, ...], now: float) -> Snapshot:
        return snapshot_of(self.store, limits, now)

    def health(self) -> dict[str, Any] | None:
        return None

    def budgets(self, limits_for: Callable[[str], tuple[Limit, ...]]) -> None:
        return None  # the embedded store keeps every window

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.store.close()


def open_guard_state(
    config: Config, limits_for: Callable[[str], tuple[Limit, ...]], wall: Callable[[], float]
) -> GuardState:
    """The store [state] asks for: Redis when redis_url is set, else the embedded one (one SQLite
    file under DRIFTGATE_HOME, shared across processes with --workers N)."""
    if not config.guard.enabled:
        return EmbeddedState(SqliteGuardStore(None))
    if config.state.redis_url is None:
        path = guard_db_path(config.home)
        if config.worker_processes > 1:
            from driftgate.proxy.guard.shared_state import SharedState

            return SharedState(SharedSqliteGuardStore(path))
        return EmbeddedState(SqliteGuardStore(path))
    try:  # imported here only, so that without redis_url nothing of redis loads
        from driftgate.proxy.guard.redis_store import RedisGuardStore
    except ImportError as exc:
        raise ConfigError(
            f"[state] redis_url is set but the Redis client is not installed ({exc.name}): "
            "pip install 'driftgate[redis]', or remove [state] redis_url"
        ) from None
    return RedisGuardStore(config.state, limits_for, wall)
