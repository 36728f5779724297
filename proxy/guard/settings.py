"""[guard] and [guard.backends.NAME]: the budgets and what reaching one does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from driftgate.proxy.config_schema import setting


@dataclass(frozen=True)
class BackendBudget:
    """[guard.backends.NAME]: budgets for one backend (beside the total ones)."""

    daily_usd: float | None = setting(None, "most this backend may spend in any 24 hours", above=0)
    hourly_usd: float | None = setting(None, "most this backend may spend in any hour", above=0)


@dataclass(frozen=True)
class GuardSettings:
    """[guard]: spend limits; off until a budget or a header rule is set."""

    daily_usd: float | None = setting(None, "most all backends may spend in any 24 hours", above=0)
    hourly_usd: float | None = setting(None, "most all backends may spend in any hour", above=0)
    action: str = setting(
        "halt", "what reaching a limit does: halt (503) or warn", choices=("halt", "warn")
    )
    cooldown_minutes: float = setting(
        60.0, "a halt lifts by itself after this many minutes (0: only driftgate resume)", min=0
    )
    header: str | None = setting(
        None, "a response header that trips the guard when it carries one of header_values"
    )
    header_values: tuple[str, ...] = setting(
        (), "values of `header` that trip the guard (case-insensitive); empty: any value"
    )
    default_max_tokens: int = setting(
        4096, "output tokens reserved for a request that sets no max_tokens", min=1
    )
    backends: Mapping[str, BackendBudget] = setting({}, "budgets per backend name")

    @property
    def enabled(self) -> bool:
        """True when any budget or the header rule is set."""
        return bool(
            self.daily_usd
            or self.hourly_usd
            or self.header
            or any(b.daily_usd or b.hourly_usd for b in self.backends.values())
        )
