"""SIGHUP: which changes of a reloaded config apply to a running gateway, and which wait for a
restart (the listening socket, connection limits, the observability pipeline)."""

from __future__ import annotations

from dataclasses import replace

from driftgate.proxy.config import Config

# Keys of the running process itself: a new value is kept for the next start and said so.
RESTART_ONLY: tuple[str, ...] = (
    "home",
    "host",
    "port",
    "workers",
    "max_body_bytes",
    "head_timeout",
    "idle_timeout",
    "max_connections",
    "log_format",
    "analytics",
    "metrics",
    "otel",
    "shapes",
    "state",
)


def _shown(config: Config, key: str) -> str:
    return "[" + key + "]" if key in ("analytics", "metrics", "otel", "shapes", "state") else key


def restart_only_changes(old: Config, new: Config) -> list[str]:
    """One sentence per changed key that cannot apply while the gateway runs."""
    return [
        f"{_shown(new, key)} changed in {new.path}: it cannot change while the gateway runs "
        "and takes effect on the next start"
        for key in RESTART_ONLY
        if getattr(old, key) != getattr(new, key)
    ]


def live_part(old: Config, new: Config) -> Config:
    """`new` with the restart-only keys kept as they run now: what a reload applies."""
    return replace(new, **{key: getattr(old, key) for key in RESTART_ONLY})
