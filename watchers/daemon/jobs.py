"""The daemon's jobs: one per watcher in the catalog, scheduled by its default cron unless
[daemon.jobs.NAME] says otherwise (cron, interval_seconds, enabled, jitter_seconds, args)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from driftgate.proxy.errors import ConfigError
from driftgate.watchers.catalog import WatcherSpec

DEFAULT_JITTER_SECONDS = 30
DEFAULT_MISFIRE_GRACE_SECONDS = 900
DEFAULT_STOP_GRACE_SECONDS = 30.0
JOB_KEYS = ("cron", "interval_seconds", "enabled", "jitter_seconds", "args", "ping_url")


@dataclass(frozen=True)
class JobConfig:
    """One scheduled watcher."""

    name: str
    argv: tuple[str, ...]  # after `driftgate [--config PATH]`: watch NAME --once ...
    cron: str | None
    interval_seconds: float | None
    jitter_seconds: int
    enabled: bool
    # This job's own dead-man's switch (DRIFTGATE_PING_URL of its runs); None: the daemon's.
    ping_url: str | None = None

    def trigger(self, *, jitter: bool = True) -> BaseTrigger:
        """The APScheduler trigger (UTC); `jitter=False` for showing the next run."""
        spread = self.jitter_seconds if jitter and self.jitter_seconds > 0 else None
        if self.interval_seconds is not None:
            return IntervalTrigger(seconds=self.interval_seconds, jitter=spread, timezone="UTC")
        assert self.cron is not None
        return (
            CronTrigger.from_crontab(self.cron, timezone="UTC")
            if spread is None
            else (_cron_with_jitter(self.cron, spread))
        )

    @property
    def schedule(self) -> str:
        """`cron 17 * * * *` or `every 30 s`, for --list."""
        if self.interval_seconds is not None:
            return f"every {self.interval_seconds:g} s"
        return f"cron {self.cron}"


def _cron_with_jitter(expression: str, jitter: int) -> CronTrigger:
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"a crontab line has 5 fields, got {len(fields)}")
    minute, hour, day, month, day_of_week = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=day_of_week,
        jitter=jitter,
        timezone="UTC",
    )


@dataclass(frozen=True)
class DaemonSettings:
    """The [daemon] table, checked."""

    jobs: tuple[JobConfig, ...]
    misfire_grace_seconds: int
    stop_grace_seconds: float


def _number(table: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where} {key} must be a number of seconds >= 0, got {value!r}")
    return float(value)


def _job(
    name: str, spec: WatcherSpec, table: Mapping[str, Any], default_jitter: float
) -> JobConfig:
    where = f"[daemon.jobs.{name}]"
    unknown = sorted(set(table) - set(JOB_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(JOB_KEYS)})"
        )
    cron = table.get("cron")
    interval = table.get("interval_seconds")
    if cron is not None and interval is not None:
        raise ConfigError(f"{where}: give cron or interval_seconds, not both")
    if interval is not None:
        interval = _number(table, "interval_seconds", 0, where)
        if interval <= 0:
            raise ConfigError(f"{where} interval_seconds must be positive")
    elif cron is None:
        cron = spec.cron
    if cron is not None:
        try:
            CronTrigger.from_crontab(str(cron), timezone="UTC")
        except ValueError as exc:
            raise ConfigError(f"{where} cron {cron!r} is not a crontab line: {exc}") from exc
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where} enabled must be true or false")
    args = table.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ConfigError(
            f'{where} args must be a list of strings, e.g. ["--backend", "anthropic"]'
        )
    return JobConfig(
        name=name,
        argv=("watch", name, *spec.unattended_args, *args),
        cron=None if cron is None else str(cron),
        interval_seconds=interval,
        jitter_seconds=int(_number(table, "jitter_seconds", default_jitter, where)),
        enabled=enabled,
        ping_url=str(table["ping_url"]) if table.get("ping_url") else None,
    )


def daemon_settings(table: Mapping[str, Any], specs: Mapping[str, WatcherSpec]) -> DaemonSettings:
    """Jobs for every watcher in the catalog; ConfigError names a mistake in [daemon]."""
    if not isinstance(table, Mapping):
        raise ConfigError("[daemon] must be a table")
    jobs_table = table.get("jobs", {})
    if not isinstance(jobs_table, Mapping):
        raise ConfigError("[daemon.jobs] must hold one table per watcher, e.g. [daemon.jobs.npm]")
    unknown = sorted(set(jobs_table) - set(specs))
    if unknown:
        raise ConfigError(
            f"[daemon.jobs.{unknown[0]}]: no watcher is called {unknown[0]!r} "
            f"(installed: {', '.join(sorted(specs))})"
        )
    jitter = _number(table, "jitter_seconds", DEFAULT_JITTER_SECONDS, "[daemon]")
    jobs = []
    for name, spec in specs.items():
        entry = jobs_table.get(name, {})
        if not isinstance(entry, Mapping):
            raise ConfigError(f"[daemon.jobs.{name}] must be a table")
        jobs.append(_job(name, spec, entry, jitter))
    return DaemonSettings(
        jobs=tuple(jobs),
        misfire_grace_seconds=int(
            _number(table, "misfire_grace_seconds", DEFAULT_MISFIRE_GRACE_SECONDS, "[daemon]")
        ),
        stop_grace_seconds=_number(
            table, "stop_grace_seconds", DEFAULT_STOP_GRACE_SECONDS, "[daemon]"
        ),
    )
