"""A client template plus what live clients sent: the candidate template for a shapes PR.

A live shape never overwrites what a release declared: facts a release declared (request_fields,
headers, tools) stay where they are and are not repeated; everything else seen at least
`min_count` times goes under `observed`, each entry with `source: shapes`, its count and first
and last seen. Entries already in the template are merged (earliest first seen, latest last seen,
the larger count), so merging the same sums again proposes the same document.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from driftgate.watchers.shapes.aggregate import KINDS, Facts, fact_json

# The template part that holds what a release declared, per fact kind.
DECLARED_IN = {"fields": "request_fields", "headers": "headers", "tool_names": "tools"}


@dataclass(frozen=True)
class Merge:
    """The candidate and what it adds or updates, per kind."""

    candidate: dict[str, Any]
    added: dict[str, list[str]]
    updated: dict[str, list[str]]

    @property
    def changed(self) -> bool:
        """Whether the candidate differs in any fact."""
        return any(self.added.values()) or any(self.updated.values())


def declared(template: Mapping[str, Any], kind: str) -> set[str]:
    """The names a release declared for `kind` in `template`."""
    part = template.get(DECLARED_IN.get(kind, ""), ())
    return {str(name) for name in part} if isinstance(part, list | dict) else set()


def families(template: Mapping[str, Any], name: str) -> tuple[str, ...]:
    """The User-Agent families whose shapes feed `template` (its client.families, else its name)."""
    client = template.get("client")
    listed = client.get("families") if isinstance(client, dict) else None
    return tuple(listed) if isinstance(listed, list) and listed else (name,)


def _merged(old: Mapping[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out = dict(new)
    out["count"] = max(int(old.get("count", 0)), new["count"])
    out["first_seen"] = min(str(old.get("first_seen", new["first_seen"])), new["first_seen"])
    out["last_seen"] = max(str(old.get("last_seen", new["last_seen"])), new["last_seen"])
    versions = set(old.get("client_versions", [])) | set(new["client_versions"])
    out["client_versions"] = sorted(versions)[-20:]
    if "types" in old or "types" in new:
        out["types"] = sorted(set(old.get("types", [])) | set(new.get("types", [])))
    return out


def merge(template: Mapping[str, Any], facts: Facts, min_count: int) -> Merge:
    """The candidate template with `facts` merged under `observed`."""
    candidate = copy.deepcopy(dict(template))
    observed: dict[str, dict[str, Any]] = {
        k: dict(v) for k, v in dict(candidate.get("observed") or {}).items()
    }
    added: dict[str, list[str]] = {k: [] for k in KINDS}
    updated: dict[str, list[str]] = {k: [] for k in KINDS}
    for kind in KINDS:
        skip = declared(template, kind)
        bucket = observed.setdefault(kind, {})
        for name, fact in sorted(facts.get(kind, {}).items()):
            if name in skip or fact.count < min_count:
                continue
            entry = fact_json(fact)
            if name in bucket:
                entry = _merged(bucket[name], entry)
                if entry != bucket[name]:
                    updated[kind].append(name)
            else:
                added[kind].append(name)
            bucket[name] = entry
    kept = {k: dict(sorted(v.items())) for k, v in observed.items() if v}
    if kept:
        candidate["observed"] = kept
    return Merge(candidate, added, updated)
