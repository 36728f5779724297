"""What liveness does about one watcher, decided from its last success alone (pure, testable)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Action = Literal["fresh", "redispatch", "alert", "not-set-up"]


@dataclass(frozen=True)
class Sighting:
    """What a source knows about one watcher's runs."""

    watcher: str
    source: str  # "actions" (a workflow file) or "daemon" (the heartbeat store)
    where: str  # watch-npm.yml, or the daemon's job name
    exists: bool = True  # the workflow is in the repository / the job is known to the daemon
    last_success: datetime | None = None
    # Actions only: a workflow_dispatch run created after the last success (a retry was tried).
    redispatched_at: datetime | None = None
    can_redispatch: bool = False
    # Daemon only: when the daemon first ran the job. A job that never succeeded is as stale as
    # the time since then (not stale from the epoch the moment the daemon starts).
    since: datetime | None = None


@dataclass(frozen=True)
class Verdict:
    """The decision and the facts behind it."""

    sighting: Sighting
    action: Action
    max_age: timedelta
    age: timedelta | None  # None: never succeeded


def decide(sighting: Sighting, max_age: timedelta, now: datetime) -> Verdict:
    """Fresh; or stale: re-dispatch once (Actions), then alert while it stays stale."""
    if not sighting.exists:
        return Verdict(sighting, "not-set-up", max_age, None)
    age = now - sighting.last_success if sighting.last_success is not None else None
    if age is None and sighting.since is not None and now - sighting.since <= max_age:
        return Verdict(sighting, "fresh", max_age, None)  # new: give its first run time
    if age is not None and age <= max_age:
        return Verdict(sighting, "fresh", max_age, age)
    if sighting.can_redispatch and sighting.redispatched_at is None:
        return Verdict(sighting, "redispatch", max_age, age)
    return Verdict(sighting, "alert", max_age, age)


def hours(delta: timedelta | None) -> str:
    """`5.2 h` (`36 min` under an hour), or `never` for a watcher with no success on record."""
    if delta is None:
        return "never"
    if delta < timedelta(hours=1):
        return f"{delta.total_seconds() / 60:.0f} min"
    return f"{delta.total_seconds() / 3600:.1f} h"


def silence(verdict: Verdict) -> str:
    """`has not succeeded for 5.2 h` or `has never succeeded`."""
    if verdict.age is None:
        return "has never succeeded"
    return f"has not succeeded for {hours(verdict.age)}"
