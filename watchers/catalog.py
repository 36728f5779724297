"""The watchers driftgate knows, each registered by its own package under the entry-point group
`driftgate.watchers`: the CLI, the daemon and liveness walk this catalog and never list watchers."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "driftgate.watchers"


@dataclass(frozen=True)
class WatcherSpec:
    """One watcher: its command line, how it runs unattended, and when it counts as silent."""

    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    cron: str  # default schedule, the same in the daemon and in watch-NAME.yml
    max_age_hours: float  # liveness: no success for longer than this is an alert
    unattended_args: tuple[str, ...] = ("--once",)  # what the daemon appends to `watch NAME`

    @property
    def workflow(self) -> str:
        """The GitHub Actions workflow file that runs this watcher."""
        return f"watch-{self.name}.yml"


@cache
def watchers() -> dict[str, WatcherSpec]:
    """Every registered watcher by name (entry points loaded once per process)."""
    found: dict[str, WatcherSpec] = {}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        spec = ep.load()
        if not isinstance(spec, WatcherSpec):
            raise TypeError(f"entry point {ep.value} is not a WatcherSpec")
        found[spec.name] = spec
    return found
