"""`driftgate changelog PACKAGE`: the wire-level changelog vendors do not publish. The last N
releases from the registry (integrity-checked), each one's facts read by the same extractor the
npm watcher uses (cached under DRIFTGATE_HOME by version and integrity), and what changed
against the release before."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from driftgate.watchers.atomic_file import write_atomically
from driftgate.watchers.extractors import Extractor
from driftgate.watchers.npm.registry import NpmRegistry
from driftgate.watchers.npm.tarball import PackageFiles
from driftgate.watchers.npm.watch import _manifest

WORKERS = 4  # tarballs fetched at once on a cold cache
RELEASES_MAX_AGE = 300.0  # seconds a cached release list is used without asking the registry


def facts_cache(home: Path, package: str) -> Path:
    """Where one package's extracted facts are kept, one file per version."""
    return home / "cache" / "changelog" / package.replace("/", "__")


def release_facts(
    registry: NpmRegistry, extractor: Extractor, package: str, version: str, cache: Path
) -> dict[str, Any]:
    """{"facts", "problems", "integrity"} of one release: from the cache when its integrity
    matches, else downloaded, verified and extracted (then cached)."""
    info = registry.version_info(package, version)
    path = cache / f"{version}.json"
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(kept, dict) and kept.get("integrity") == info.integrity and info.integrity:
            return kept
    except (OSError, ValueError):
        pass
    files: PackageFiles = registry.tarball(info)  # integrity verified before it is read
    extracted = extractor.extract(files, _manifest(files))
    entry = {"integrity": info.integrity, "facts": dict(extracted.facts),
             "problems": list(extracted.problems)}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(entry, sort_keys=True))
    return entry


def _names(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {str(k) for k in value}
    if isinstance(value, list):
        return {str(v) for v in value}
    return set()


def changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """What changed per fact: lists and maps as added/removed names (and tool fields), other
    values as from/to; empty when nothing did."""
    if old is None:
        return {}
    out: dict[str, Any] = {}
    for key in sorted((set(old) | set(new)) - {"version"}):  # the release's own version
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, list | dict) or isinstance(b, list | dict):
            change: dict[str, Any] = {}
            added, removed = sorted(_names(b) - _names(a)), sorted(_names(a) - _names(b))
            if added:
                change["added"] = added
            if removed:
                change["removed"] = removed
            if isinstance(a, dict) and isinstance(b, dict):
                fields = {}
                for name in sorted(set(a) & set(b)):
                    if a[name] != b[name]:
                        fa, fb = _names(a[name]), _names(b[name])
                        fields[name] = {"added": sorted(fb - fa), "removed": sorted(fa - fb)}
                if fields:
                    change["changed"] = fields
            if change:  # the same names in another order is no change on the wire
                out[key] = change
        else:
            out[key] = {"from": a, "to": b}
    return out


def changelog(
    registry: NpmRegistry,
    extractor: Extractor,
    package: str,
    last: int,
    cache: Path,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The JSON document `--json` prints: the last `last` releases, oldest first."""
    releases = registry.releases(package, RELEASES_MAX_AGE)
    window = releases[-(last + 1) :]  # one more: the baseline of the oldest shown
    lock = threading.Lock()

    def one(item: tuple[str, str | None]) -> dict[str, Any]:
        entry = release_facts(registry, extractor, package, item[0], cache)
        if progress is not None:
            with lock:
                progress(f"{package}@{item[0]}: facts read")
        return entry

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        entries = list(pool.map(one, window))
    out = []
    previous: Mapping[str, Any] | None = None
    for (version, published), entry in zip(window, entries, strict=True):
        facts = entry["facts"]
        row = {"version": version, "published": published, "facts": facts,
               "changes": changes(previous, facts)}  # fmt: skip
        if entry.get("problems"):
            row["problems"] = entry["problems"]
        out.append(row)
        previous = facts
    shown = out[-last:] if len(out) > last else out
    if len(out) > last:  # the baseline is not shown, only compared against
        pass
    elif shown:
        shown[0]["changes"] = None  # the first release of the package: nothing before it
    return {"package": package, "releases": shown}


def _describe(change: Mapping[str, Any]) -> str:
    if "from" in change:
        return f"{change['from']} -> {change['to']}"
    parts = []
    if change.get("added"):
        parts.append("+" + ", +".join(change["added"]))
    if change.get("removed"):
        parts.append("-" + ", -".join(change["removed"]))
    for name, fields in (change.get("changed") or {}).items():
        bits = [f"+{f}" for f in fields["added"]] + [f"-{f}" for f in fields["removed"]]
        parts.append(f"{name}({' '.join(bits)})")
    return "; ".join(parts)


def render_text(doc: Mapping[str, Any]) -> str:
    """One block per release: version, date, and each changed fact."""
    lines = [f"{doc['package']}: last {len(doc['releases'])} releases, oldest first", ""]
    for r in doc["releases"]:
        day = (r["published"] or "")[:10] or "date unknown"
        ch = r["changes"]
        if ch is None:
            lines.append(f"{r['version']}  ({day})  first release shown in full")
        elif not ch:
            lines.append(f"{r['version']}  ({day})  no change in the facts")
        else:
            lines.append(f"{r['version']}  ({day})")
            lines += [f"    {key}: {_describe(c)}" for key, c in ch.items()]
        lines += [f"    problem: {p}" for p in r.get("problems", [])]
    return "\n".join(lines) + "\n"


def render_markdown(doc: Mapping[str, Any]) -> str:
    """A table: version, date, what changed."""
    lines = [f"## `{doc['package']}`", "", "| version | published | changes |", "|---|---|---|"]
    for r in doc["releases"]:
        ch = r["changes"]
        what = ("first release" if ch is None else "; ".join(
            f"**{k}**: {_describe(c)}" for k, c in ch.items()) or "no change")  # fmt: skip
        lines.append(f"| {r['version']} | {(r['published'] or '')[:10]} | {what} |")
    return "\n".join(lines) + "\n"


def pick_extractor(
    package: str, found: Mapping[str, Extractor], named: str | None, configured: Sequence[Any]
) -> Extractor | None:
    """The extractor for `package`: --extractor, else [watch] packages' extractor, else its own."""
    by_name = {e.name: e for e in found.values()}
    if named:
        return by_name.get(named)
    for entry in configured:
        if isinstance(entry, dict) and entry.get("name") == package and entry.get("extractor"):
            return by_name.get(str(entry["extractor"]))
    return found.get(package)
