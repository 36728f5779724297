"""What `watch shapes` remembers between runs, per shape-log file: how much of each shape row it
has taken (the watermark) and the facts summed over everything taken so far.

A run takes only what the log gained since the last successful run (rows seen since then, each
counting for what its count grew by), adds it to the saved totals, and proposes the totals. The
totals survive the log's cap (a trimmed row's counts stay summed) and a PR that is not merged yet
(its counts are in the totals, not in the approved template). Saved only after a successful,
publishing run: a failed or --dry-run run leaves the watermark where it was, so the next run takes
the same shapes again and nothing is counted twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from driftgate.watchers.errors import StateError
from driftgate.watchers.shapes.aggregate import KINDS, Fact, Facts, ShapeRow, facts_of
from driftgate.watchers.state import read_state_file, write_state_file

STATE_VERSION = 1


@dataclass
class Watermark:
    """One shape log's watermark: each row's count taken, the newest last_seen taken, the totals."""

    taken: dict[str, int] = field(default_factory=dict)
    since: float = 0.0
    totals: dict[str, Facts] = field(default_factory=dict)  # family -> kind -> name -> fact

    def take(self, rows: Iterable[ShapeRow], present: Iterable[str]) -> list[ShapeRow]:
        """The part of `rows` not taken yet (each row's count is what it grew by); the watermark
        moves past them and forgets rows no longer in the log (`present`: the keys it holds)."""
        new: list[ShapeRow] = []
        for row in rows:
            before = self.taken.get(row.key, 0)
            # A count below what was taken: the row was trimmed by the cap and came back.
            grown = row.count - before if row.count >= before else row.count
            if grown > 0:
                new.append(replace(row, count=grown))
            self.taken[row.key] = row.count
            self.since = max(self.since, row.last_seen)
        keep = set(present)
        self.taken = {k: v for k, v in self.taken.items() if k in keep}
        for family, facts in facts_of(new).items():
            add_facts(self.totals.setdefault(family, {k: {} for k in KINDS}), facts)
        return new

    def to_json(self) -> dict[str, Any]:
        """As saved."""
        return {
            "since": self.since,
            "taken": dict(sorted(self.taken.items())),
            "totals": {
                family: {kind: {n: _fact_json(f) for n, f in sorted(names.items())}
                         for kind, names in facts.items() if names}
                for family, facts in sorted(self.totals.items())
            },
        }  # fmt: skip

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Watermark:
        """As loaded; KeyError/TypeError/ValueError on a malformed entry."""
        totals: dict[str, Facts] = {}
        for family, facts in dict(raw.get("totals", {})).items():
            into: Facts = {k: {} for k in KINDS}
            for kind, names in dict(facts).items():
                if kind in into:
                    into[kind] = {str(n): _fact(f) for n, f in dict(names).items()}
            totals[str(family)] = into
        taken = {str(k): int(v) for k, v in dict(raw.get("taken", {})).items()}
        return cls(taken=taken, since=float(raw.get("since", 0.0)), totals=totals)


def add_facts(into: Facts, more: Facts) -> None:
    """Sum `more` into `into`, fact by fact."""
    for kind, names in more.items():
        bucket = into.setdefault(kind, {})
        for name, fact in names.items():
            target = bucket.setdefault(name, Fact())
            target.add(fact.count, fact.first_seen, fact.last_seen, None, "", fact.types)
            target.versions |= fact.versions
            target.endpoints |= fact.endpoints


def _fact_json(fact: Fact) -> dict[str, Any]:
    return {"count": fact.count, "first_seen": fact.first_seen, "last_seen": fact.last_seen,
            "versions": sorted(fact.versions), "endpoints": sorted(fact.endpoints),
            "types": sorted(fact.types)}  # fmt: skip


def _fact(raw: Mapping[str, Any]) -> Fact:
    return Fact(int(raw["count"]), float(raw["first_seen"]), float(raw["last_seen"]),
                set(raw.get("versions", [])), set(raw.get("endpoints", [])),
                set(raw.get("types", [])))  # fmt: skip


@dataclass
class ShapesState:
    """The watermarks of every shape log `watch shapes` has read, keyed by its resolved path."""

    path: Path
    logs: dict[str, Watermark] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ShapesState:
        """Read the state at `path`; an absent file is an empty state (every shape is new)."""
        raw = read_state_file(path, "the shapes watcher's state", "take the whole shape log again")
        if raw is None:
            return cls(path=path)
        try:
            if raw.get("version") != STATE_VERSION:
                raise ValueError(f"version {raw.get('version')!r}")
            logs = {str(k): Watermark.from_json(v) for k, v in dict(raw["logs"]).items()}
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise StateError(
                f"{path}: not a driftgate shapes watcher state ({exc}); delete it to take the "
                "whole shape log again"
            ) from exc
        return cls(path=path, logs=logs)

    def watermark(self, log: Path) -> Watermark:
        """The watermark of the shape log at `log` (a fresh one the first time)."""
        return self.logs.setdefault(str(log.resolve()), Watermark())

    def save(self) -> None:
        """Write atomically, so a run killed mid-write leaves the previous state intact."""
        doc = {"version": STATE_VERSION,
               "logs": {k: v.to_json() for k, v in sorted(self.logs.items())}}  # fmt: skip
        write_state_file(self.path, json.dumps(doc, indent=2), "the shapes watcher's state")


def shapes_state_path(home: Path) -> Path:
    """Where the shapes watcher's state lives under DRIFTGATE_HOME."""
    return home / "state" / "shapes.json"
