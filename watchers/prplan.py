"""What a drift pull request says: title, labels, body (table, diff, provenance, checklist), commit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from driftgate.proxy.templates import canonical_json
from driftgate.watchers.diff import Drift, fingerprint, render_markdown
from driftgate.watchers.npm.registry_url import display_url
from driftgate.watchers.publish import PullRequestPlan
from driftgate.watchers.state import TrivialRelease

RUNBOOK_PATH = "runbooks/npm-drift.md"
BASE_LABELS = ("drift", "drift:npm")
# Room left under the publisher's own cut (58,000) for everything around the diff.
DIFF_BUDGET = 40_000
RUNBOOK_SECTION = {
    "breaking": "breaking-drift",
    "additive": "additive-drift",
    "trivial": "trivial-releases",
    "none": "trivial-releases",
}


@dataclass(frozen=True)
class Provenance:
    """Where a candidate came from: enough for a reviewer to check it by hand."""

    package: str
    tag: str
    old_version: str
    new_version: str
    integrity: str | None
    tarball_url: str | None
    registry: str
    observed_at: str
    run_url: str | None = None
    folded: tuple[TrivialRelease, ...] = ()


def runbook_url(server_url: str | None, repo: str | None) -> str:
    """A link to the drift runbook that works from a PR body (relative links do not)."""
    if not server_url or not repo:
        return RUNBOOK_PATH
    return f"{server_url.rstrip('/')}/{repo}/blob/HEAD/{RUNBOOK_PATH}"


def pr_title(template: str, prov: Provenance, drift: Drift, problems: Sequence[str]) -> str:
    """`drift(anthropic): @anthropic-ai/sdk 1.11.0 -> 1.12.0: +2 models, +3 betas`."""
    summary = drift.summary()
    if not summary:
        summary = "extractor needs attention" if problems else "version bump only"
    elif problems:
        summary += " (extractor needs attention)"
    return f"drift({template}): {prov.package} {prov.old_version} -> {prov.new_version}: {summary}"


def pr_labels(drift: Drift, problems: Sequence[str]) -> tuple[str, ...]:
    """`drift`, `drift:npm`, plus `breaking` for breaking drift and `drift:extractor` for problems."""
    labels = list(BASE_LABELS)
    if drift.severity == "breaking":
        labels.append("breaking")
    if problems:
        labels.append("drift:extractor")
    return tuple(labels)


def _code(value: object) -> str:
    return f"`{value}`" if value not in (None, "") else "—"


def _provenance_section(prov: Provenance) -> list[str]:
    rows = [
        ("package", _code(prov.package)),
        (
            "versions",
            f"{_code(prov.old_version)} → {_code(prov.new_version)} (dist-tag {_code(prov.tag)})",
        ),
        ("integrity", _code(prov.integrity)),
        # No credential in a registry URL reaches a PR, not even masked.
        ("tarball", display_url(prov.tarball_url, mask="") if prov.tarball_url else "—"),
        ("registry", display_url(prov.registry, mask="")),
        ("observed at", prov.observed_at),
    ]
    if prov.run_url:
        rows.append(("workflow run", prov.run_url))
    lines = ["### Provenance", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    if prov.folded:
        lines += [
            "",
            "Trivial releases folded into this PR (facts unchanged, not PR'd on their own):",
            "",
        ]
        lines += [
            f"- {_code(r.package)} {_code(r.version)} — integrity {_code(r.integrity)}, seen {r.observed_at}"
            for r in prov.folded
        ]
    return lines


def _checklist(
    drift: Drift, prov: Provenance, new_models: Sequence[str], problems: Sequence[str], runbook: str
) -> list[str]:
    anchor = "extractor-problems" if problems else RUNBOOK_SECTION.get(drift.severity, "")
    items = [f"- [ ] Read the runbook for this kind of PR: [{RUNBOOK_PATH}]({runbook}#{anchor})"]
    if drift.severity == "breaking":
        items.append(
            "- [ ] Something was removed: check aliases, configs and `beta_policy` that still name it"
        )
    if new_models:
        items.append(
            "- [ ] Fill the curated fields of every `needs_review` model, then set `needs_review` to false"
        )
    if problems:
        items.append(
            "- [ ] Fix or update the extractor before merging: the facts it could not find kept their old values"
        )
    items += [
        "- [ ] The versions and integrity above match the registry "
        f"(`npm view {prov.package}@{prov.new_version} dist.integrity`)",
        "- [ ] CI and the compat gate (`driftgate template validate`) are green",
    ]
    return ["### Reviewer checklist", "", *items]


def removed_items(drift: Drift, candidate: Mapping[str, Any] | None = None) -> list[str]:
    """What the drift removes that clients may depend on: models (with aliases still naming them), betas, tools."""
    aliases = candidate.get("aliases") if candidate is not None else None
    pointing: dict[str, list[str]] = {}
    for alias, target in sorted(aliases.items()) if isinstance(aliases, Mapping) else []:
        pointing.setdefault(str(target), []).append(str(alias))
    out = []
    for c in drift.changes:
        if c.kind != "removed" or (c.item and c.path.startswith("/tools/")):
            continue
        parts = c.path.split("/")
        if c.path == "/api/betas":
            out.append(f"beta `{c.old}`")
        elif len(parts) == 3 and parts[1] in ("models", "tools"):
            key = parts[2].replace("~1", "/").replace("~0", "~")
            line = f"{parts[1][:-1]} `{key}`"
            if parts[1] == "models" and key in pointing:
                named = ", ".join(f"`{a}`" for a in pointing[key])
                line += f" — still the target of alias {named}: re-point it before merging"
            out.append(line)
    return out


def pr_body(
    drift: Drift,
    prov: Provenance,
    *,
    new_models: Sequence[str] = (),
    problems: Sequence[str] = (),
    runbook: str = RUNBOOK_PATH,
    candidate: Mapping[str, Any] | None = None,
) -> str:
    """The PR body: what changed (table + diff), what to review, where it came from, the checklist."""
    lines = [
        f"driftgate noticed a new release of `{prov.package}`: "
        f"`{prov.old_version}` → `{prov.new_version}` (dist-tag `{prov.tag}`).",
        "",
    ]
    if problems:
        lines += ["### Extractor problems", ""]
        lines += [f"- {p}" for p in problems]
        lines += [
            "",
            "What could not be read kept its previous value; see the runbook before merging.",
            "",
        ]
    removed = removed_items(drift, candidate)
    if removed:
        lines += ["### Removed (breaking)", "", *[f"- {r}" for r in removed], ""]
    if new_models:
        lines += [
            "### New models to review",
            "",
            "These arrived with their curated fields empty and `needs_review: true`:",
            "",
            *[f"- `{m}`" for m in new_models],
            "",
        ]
    lines += ["### Changes", "", render_markdown(drift, max_chars=DIFF_BUDGET).rstrip(), ""]
    lines += _provenance_section(prov)
    lines += ["", *_checklist(drift, prov, new_models, problems, runbook), ""]
    return "\n".join(lines)


def commit_message(template: str, prov: Provenance, drift: Drift, identity: str) -> str:
    """A commit message naming the package and both versions."""
    head = f"drift({template}): {prov.package} {prov.old_version} -> {prov.new_version}"
    body = [f"{drift.summary() or 'version bump only'} ({drift.severity})"]
    if prov.integrity:
        body.append(f"Integrity: {prov.integrity}")
    if prov.folded:
        body.append("Folded trivial releases: " + ", ".join(r.version for r in prov.folded))
    body.append(f"Fingerprint: {identity}")
    return head + "\n\n" + "\n".join(body) + "\n"


def build_plan(
    template: str,
    candidate: Mapping[str, Any],
    drift: Drift,
    prov: Provenance,
    *,
    new_models: Sequence[str] = (),
    problems: Sequence[str] = (),
    auto_merge: str = "off",
    runbook: str = RUNBOOK_PATH,
) -> PullRequestPlan:
    """Everything the publisher needs for one template's PR."""
    mergeable = drift.severity in ("additive", "trivial") and not problems
    # The same identity the diff engine gives the candidate (observed_at left out, see diff.py).
    identity = fingerprint(candidate)
    return PullRequestPlan(
        template=template,
        path=f"proxy/templates/{template}.json",
        content=canonical_json(candidate),
        title=pr_title(template, prov, drift, problems),
        body=pr_body(
            drift,
            prov,
            new_models=new_models,
            problems=problems,
            runbook=runbook,
            candidate=candidate,
        ),
        labels=pr_labels(drift, problems),
        commit_message=commit_message(template, prov, drift, identity),
        fingerprint=identity,
        auto_merge=auto_merge == "additive" and mergeable,
        partial=bool(problems),
    )
