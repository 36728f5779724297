"""The diff engine: structural changes between two templates, their severity and a Markdown view."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from driftgate.proxy.templates import canonical_json, content_hash

ChangeKind = Literal["added", "removed", "changed"]
Severity = Literal["none", "trivial", "additive", "breaking"]

# Count keys in the order `Drift.summary` prints them, with the noun each counts.
COUNT_NOUNS: tuple[tuple[str, str], ...] = (
    ("+models", "model"),
    ("-models", "model"),
    ("+betas", "beta"),
    ("-betas", "beta"),
    ("+tools", "tool"),
    ("-tools", "tool"),
    ("+tool_fields", "tool field"),
    ("-tool_fields", "tool field"),
    ("~fields", "field"),
)
# Single derived values a reviewer wants to read in the title, not as "~1 field".
NAMED_FIELDS: Mapping[str, str] = {
    "/api/version": "API version",
    "/client/engines_node": "Node",
}
# When this run looked is not a fact of the candidate: left out of its fingerprint, so the same
# release rebaked twice (or by two runs) has the same identity and an open PR is left alone.
RUN_DEPENDENT = ("observed_at",)
TABLE_ROW_LIMIT = 200
VALUE_WIDTH = 60


@dataclass(frozen=True)
class Change:
    """One structural change at a JSON-pointer-like path; a set item carries its value in old/new."""

    path: str
    kind: ChangeKind
    old: Any
    new: Any
    # True for one name added to or removed from a list of names (a beta, a tool's input field).
    item: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Drift:
    """Every change between two templates, how serious it is, and the candidate's fingerprint."""

    changes: tuple[Change, ...]
    severity: Severity
    unified: str
    fingerprint: str
    counts: Mapping[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """`+2 models, +3 betas, API version 2026-01-01` style; empty when no fact changed."""
        parts = []
        for key, noun in COUNT_NOUNS:
            n = self.counts.get(key, 0)
            if n:
                parts.append(f"{key[0]}{n} {noun}{'' if n == 1 else 's'}")
        for change in self.changes:
            if change.path in NAMED_FIELDS:
                shown = "removed" if change.kind == "removed" else change.new
                parts.append(f"{NAMED_FIELDS[change.path]} {shown}")
        return ", ".join(parts)


def fingerprint_view(candidate: Mapping[str, Any]) -> dict[str, Any]:
    """The candidate as fingerprinted: `source` without its run-dependent `observed_at`."""
    doc = dict(candidate)
    source = doc.get("source")
    if isinstance(source, Mapping):
        doc["source"] = {k: v for k, v in source.items() if k not in RUN_DEPENDENT}
    return doc


def fingerprint(candidate: Mapping[str, Any]) -> str:
    """`sha256:` + sha256 of the canonical JSON of the candidate, `source.observed_at` left out."""
    return content_hash(fingerprint_view(candidate))


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _in_source(change: Change) -> bool:
    """Whether a change is about `source` (where the template came from), not a fact."""
    return change.path == "/source" or change.path.startswith("/source/")


def _is_string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, str) for x in value)


def _walk(old: Any, new: Any, path: str) -> Iterator[Change]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            sub = f"{path}/{_escape(str(key))}"
            if key not in new:
                yield Change(sub, "removed", old[key], None)
            elif key not in old:
                yield Change(sub, "added", None, new[key])
            else:
                yield from _walk(old[key], new[key], sub)
    elif _is_string_list(old) and _is_string_list(new):
        # Lists of names (betas, tool fields, headers) are sets: order is not a fact.
        for name in sorted(set(old) - set(new)):
            yield Change(path, "removed", name, None, item=True)
        for name in sorted(set(new) - set(old)):
            yield Change(path, "added", None, name, item=True)
    elif old != new or type(old) is not type(new):
        yield Change(path, "changed", old, new)


def _category(change: Change) -> str | None:
    """Which counted fact a change is about: models, betas, tools, tool_fields, or None."""
    parts = change.path.split("/")
    if len(parts) == 3 and parts[1] == "tools" and change.item:
        return "tool_fields"
    if len(parts) == 3 and parts[1] in ("models", "tools") and change.kind != "changed":
        return parts[1]
    if change.path == "/api/betas" and change.kind != "changed":
        return "betas"
    return None


def _counts(changes: tuple[Change, ...]) -> dict[str, int]:
    counts = {key: 0 for key, _ in COUNT_NOUNS}
    for change in changes:
        if _in_source(change) or change.path in NAMED_FIELDS:
            continue
        category = _category(change)
        if category is None:
            counts["~fields"] += 1
        else:
            counts[("+" if change.kind == "added" else "-") + category] += 1
    return counts


def _severity(changes: tuple[Change, ...]) -> Severity:
    if not changes:
        return "none"
    # A tool losing one input field is shown ("-1 tool field") but, like any other field change,
    # is not one of the removals the issue calls breaking (a model, a beta, a tool).
    if any(c.kind == "removed" and _category(c) in ("models", "betas", "tools") for c in changes):
        return "breaking"
    if all(_in_source(c) for c in changes):
        return "trivial"
    return "additive"


def diff_templates(old: Mapping[str, Any], new: Mapping[str, Any]) -> Drift:
    """Compare two templates: structural changes, severity, unified diff, fingerprint of `new`."""
    changes = tuple(_walk(dict(old), dict(new), ""))
    name = str(new.get("name") or old.get("name") or "template")
    unified = "".join(
        difflib.unified_diff(
            canonical_json(old).splitlines(keepends=True),
            canonical_json(new).splitlines(keepends=True),
            fromfile=f"a/{name}.json",
            tofile=f"b/{name}.json",
        )
    )
    return Drift(
        changes=changes,
        severity=_severity(changes),
        unified=unified,
        fingerprint=fingerprint(new),
        counts=_counts(changes),
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = (
        value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    )
    if len(text) > VALUE_WIDTH:
        text = text[: VALUE_WIDTH - 1] + "…"
    text = text.replace("|", "\\|").replace("\n", " ").replace("`", "'")
    return f"`{text}`"


def _fence(text: str) -> str:
    """A backtick fence longer than any backtick run inside `text`, so it cannot be closed early."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def render_markdown(drift: Drift, *, title: str | None = None, max_chars: int = 40_000) -> str:
    """Summary table (change | path | old | new), then a diff block truncated past `max_chars`."""
    lines: list[str] = []
    if title:
        lines += [f"### {title}", ""]
    summary = drift.summary() or "no extracted fact changed"
    lines += [f"**Severity:** {drift.severity} · {summary}", ""]
    if drift.changes:
        lines += ["| change | path | old | new |", "|---|---|---|---|"]
        # The table gets at most half the room; the diff block the rest.
        room = max_chars // 2 - sum(len(line) + 1 for line in lines)
        shown = 0
        for change in drift.changes[:TABLE_ROW_LIMIT]:
            row = f"| {change.kind} | `{change.path}` | {_cell(change.old)} | {_cell(change.new)} |"
            room -= len(row) + 1
            if room < 0:
                break
            lines.append(row)
            shown += 1
        if shown < len(drift.changes):
            lines.append(f"\n_{len(drift.changes) - shown} more changes not listed._")
        lines.append("")
    head = "\n".join(lines)
    if not drift.unified:
        return head
    fence = _fence(drift.unified)
    budget = max_chars - len(head) - 2 * len(fence) - 200
    diff_lines = drift.unified.splitlines()
    kept: list[str] = []
    used = 0
    for line in diff_lines:
        if used + len(line) + 1 > budget:
            break
        kept.append(line)
        used += len(line) + 1
    body = "\n".join(kept)
    note = ""
    if len(kept) < len(diff_lines):
        note = (
            f"\n_Diff truncated: {len(diff_lines) - len(kept)} more lines not shown "
            "(`driftgate template diff OLD NEW` prints it all)._\n"
        )
    return f"{head}\n{fence}diff\n{body}\n{fence}\n{note}"
