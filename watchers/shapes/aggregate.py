"""Read the gateway's shape log and sum it into facts per client family: each field, role, block
type, beta, tool name and header with its count, first and last seen, and client versions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from driftgate.watchers.errors import WatchError

# Fact kinds, in the order a PR lists them; each is read from one part of a shape.
KINDS = ("fields", "roles", "block_types", "betas", "tool_names", "headers")
MAX_VERSIONS = 20


@dataclass
class Fact:
    """One thing live clients sent: how often, when, from which client versions."""

    count: int = 0
    first_seen: float = float("inf")
    last_seen: float = 0.0
    versions: set[str] = field(default_factory=set)
    endpoints: set[str] = field(default_factory=set)
    types: set[str] = field(default_factory=set)  # JSON types, for fields

    def add(self, count: int, first: float, last: float, version: str | None, endpoint: str,
            types: Iterable[str] = ()) -> None:  # fmt: skip
        """Fold one shape row into the fact."""
        self.count += count
        self.first_seen = min(self.first_seen, first)
        self.last_seen = max(self.last_seen, last)
        if version:
            self.versions.add(version)
        self.endpoints.add(endpoint)
        self.types.update(types)


Facts = dict[str, dict[str, Fact]]  # kind -> name -> fact


@dataclass(frozen=True)
class ShapeRow:
    """One row of the shape log."""

    family: str
    version: str | None
    endpoint: str
    shape: Mapping[str, Any]
    count: int
    first_seen: float
    last_seen: float
    key: str = ""  # the shape log's row key (the same shape in the same row every run)


@dataclass(frozen=True)
class LogRead:
    """What one run read of the shape log: the rows seen since a time, and every row's key."""

    rows: list[ShapeRow]
    keys: frozenset[str]


def read_rows(path: Path, since: float = 0.0) -> LogRead:
    """The rows of the shape log at `path` last seen at or after `since` (read-only), and the keys
    of all its rows; WatchError when it cannot be read."""
    if not path.exists():
        raise WatchError(
            f"no shape log at {path}: is the gateway running with [shapes] enabled under the "
            "same DRIFTGATE_HOME? (or pass --shapes PATH)"
        )
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
            rows = db.execute(
                "SELECT family, version, endpoint, shape, count, first_seen, last_seen, key"
                " FROM shapes WHERE last_seen >= ?",
                (since,),
            ).fetchall()
            keys = frozenset(k for (k,) in db.execute("SELECT key FROM shapes"))
    except sqlite3.Error as exc:
        raise WatchError(f"cannot read the shape log {path}: {exc}") from exc
    return LogRead(
        [
            ShapeRow(f, v, e, orjson.loads(s), int(c), float(a), float(b), str(k))
            for f, v, e, s, c, a, b, k in rows
        ],
        keys,
    )


def facts_of(rows: Iterable[ShapeRow]) -> dict[str, Facts]:
    """family -> kind -> name -> Fact, summed over `rows`."""
    out: dict[str, Facts] = {}
    for row in rows:
        facts = out.setdefault(row.family, {k: {} for k in KINDS})
        shape = row.shape
        fields = shape.get("fields", {})
        values = shape.get("values", {})
        found: dict[str, dict[str, Iterable[str]]] = {
            # top-level body fields, the unit request_fields speaks of
            "fields": {p: fields[p] for p in fields if "." not in p and "[" not in p},
            "roles": dict.fromkeys(values.get("roles", []), ()),
            "block_types": dict.fromkeys(values.get("block_types", []), ()),
            "betas": dict.fromkeys(shape.get("header_values", {}).get("anthropic-beta", []), ()),
            "tool_names": dict.fromkeys(values.get("tool_names", []), ()),
            "headers": dict.fromkeys(shape.get("headers", []), ()),
        }
        for kind, names in found.items():
            for name, types in names.items():
                if name.startswith("<"):  # <other> / <redacted>: nothing to propose
                    continue
                fact = facts[kind].setdefault(name, Fact())
                fact.add(row.count, row.first_seen, row.last_seen, row.version, row.endpoint, types)
    return out


def stamp(epoch: float) -> str:
    """An epoch second as the templates' UTC timestamp."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fact_json(fact: Fact) -> dict[str, Any]:
    """A fact as a template's `observed` entry (`source: shapes` says where it came from)."""
    out: dict[str, Any] = {
        "source": "shapes",
        "count": fact.count,
        "first_seen": stamp(fact.first_seen),
        "last_seen": stamp(fact.last_seen),
        "client_versions": sorted(fact.versions)[-MAX_VERSIONS:],
    }
    if fact.types:
        out["types"] = sorted(fact.types)
    return out
