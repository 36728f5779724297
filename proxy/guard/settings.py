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


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def _redis_url_problem(url: str) -> str | None:
    if not url.startswith(REDIS_SCHEMES):
        return "must start with redis://, rediss:// (TLS) or unix:// (a socket path)"
    return None


def redact_url(url: str) -> str:
    """`url` with its password (if any) replaced by ***, fit for /health, logs and doctor."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    user, colon, _password = creds.partition(":")
    return f"{scheme}{sep}{user}{':***' if colon else ''}@{host}"


@dataclass(frozen=True)
class StateSettings:
    """[state]: where state shared by several gateways lives (the spend guard's, in Redis)."""

    redis_url: str | None = setting(
        None,
        "keep the guard's spend, reservations, halt and backend cooldowns in this Redis",
        env="DRIFTGATE_REDIS_URL",
        check=_redis_url_problem,
        secret=True,
    )
    fail: str = setting(
        "open",
        "Redis unreachable: open forwards requests unguarded (counted), closed answers 503",
        choices=("open", "closed"),
    )
    key_prefix: str = setting(
        "driftgate:", "prefix of every Redis key (gateways sharing a budget share a prefix)"
    )
    reservation_seconds: float = setting(
        900.0, "a reservation not settled by then is reclaimed (its gateway died)", min=1
    )
    timeout_seconds: float = setting(
        0.25, "most one call to Redis may take before Redis counts as unreachable", above=0, max=30
    )
    retry_seconds: float = setting(
        1.0, "while Redis is unreachable, how often the gateway tries it again", above=0, max=300
    )
