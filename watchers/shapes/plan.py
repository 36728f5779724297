"""What a shapes pull request says: title, body (facts with counts and sources, what the
translation drops, the diff), labels, and its own branch beside the npm drift PR."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from driftgate.proxy.templates import canonical_json
from driftgate.watchers.diff import diff_templates, fingerprint, render_markdown
from driftgate.watchers.publish import PullRequestPlan
from driftgate.watchers.shapes.aggregate import KINDS
from driftgate.watchers.shapes.merge import Merge

RUNBOOK = "runbooks/shapes.md"
LABELS = ("drift", "drift:shapes")
NOUNS = {"fields": "field", "roles": "role", "block_types": "block type", "betas": "beta",
         "tool_names": "tool", "headers": "header"}  # fmt: skip


def branch_for(template: str) -> str:
    """The shapes PR's branch: apart from driftgate/<template>, which the npm watcher owns."""
    return f"driftgate/shapes-{template}"


def summary(merge: Merge) -> str:
    """`+2 roles, +1 tool, 3 updated`."""
    parts = []
    for kind in KINDS:
        n = len(merge.added[kind])
        if n:
            parts.append(f"+{n} {NOUNS[kind]}{'' if n == 1 else 's'}")
    updated = sum(len(v) for v in merge.updated.values())
    if updated:
        parts.append(f"{updated} updated")
    return ", ".join(parts) or "no change"


def _fact_rows(merge: Merge) -> list[str]:
    observed: Mapping[str, Mapping[str, Any]] = merge.candidate.get("observed", {})
    lines = ["| kind | name | count | first seen | last seen | client versions | source |",
             "|---|---|---:|---|---|---|---|"]  # fmt: skip
    for kind in KINDS:
        for name in [*merge.added[kind], *merge.updated[kind]]:
            e = observed[kind][name]
            new = "new" if name in merge.added[kind] else "updated"
            versions = ", ".join(e["client_versions"][-5:]) or "—"
            lines.append(
                f"| {NOUNS[kind]} ({new}) | `{name}` | {e['count']} | {e['first_seen']} | "
                f"{e['last_seen']} | {versions} | live shapes |"
            )
    return lines


def pr_body(
    template: str,
    old: Mapping[str, Any],
    merge: Merge,
    breaks: Sequence[tuple[str, str, str, str]],
    min_count: int,
    run_url: str | None,
) -> str:
    """The PR body: what was seen, what the translation does with it, the diff, a checklist."""
    source = old.get("source", {})
    declared = f"{source.get('package', '?')} {source.get('version', '?')}"
    lines = [
        f"Live clients of `{template}` sent what its template does not hold (seen at least "
        f"{min_count} times in the gateway's shape log). Facts a release declared "
        f"({declared}) are kept as they are; what is new is under `observed`, each entry with "
        "`source: shapes`.",
        "",
        "### Seen",
        "",
        *_fact_rows(merge),
        "",
    ]
    if breaks:
        lines += ["### Not handled by the gateway's translation", "",
                  "| backend kind | kind | name | what happens |", "|---|---|---|---|"]  # fmt: skip
        lines += [f"| {t} | {NOUNS[k]} | `{n}` | {what} |" for t, k, n, what in breaks]
        lines.append("")
    drift = diff_templates(old, merge.candidate)
    lines += ["### Changes", "", render_markdown(drift, max_chars=30_000).rstrip(), ""]
    if run_url:
        lines += [f"Watcher run: {run_url}", ""]
    lines += [
        "### Reviewer checklist",
        "",
        f"- [ ] Read the runbook: `{RUNBOOK}`",
        "- [ ] Each new fact is plausible for this client (not a one-off or a proxy in between)",
        "- [ ] Anything the translation drops or refuses has an issue or a fix",
        "",
    ]
    return "\n".join(lines)


def build_plan(
    template: str,
    old: Mapping[str, Any],
    merge: Merge,
    breaks: Sequence[tuple[str, str, str, str]],
    *,
    min_count: int,
    run_url: str | None = None,
) -> PullRequestPlan:
    """Everything the publisher needs for one template's shapes PR."""
    title = f"drift({template}): live shapes: {summary(merge)}"
    identity = fingerprint(merge.candidate)
    return PullRequestPlan(
        template=template,
        path=f"proxy/templates/{template}.json",
        content=canonical_json(merge.candidate),
        title=title,
        body=pr_body(template, old, merge, breaks, min_count, run_url),
        labels=LABELS,
        commit_message=f"{title}\n\nFound by driftgate watch shapes.\nFingerprint: {identity}\n",
        fingerprint=identity,
        auto_merge=False,
        branch=branch_for(template),
    )
