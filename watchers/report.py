"""The outcome of a watch run, as a `--json` document and as text for a person."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from driftgate.watchers.state import TrivialRelease

Status = Literal[
    "up-to-date",  # the dist-tag points at the template's version
    "already-handled",  # a previous run handled this version (state); nothing fetched
    "no-drift",  # rebaked, nothing changed at all: GitHub is never contacted
    "trivial-recorded",  # only `source` moved: recorded, folded into the next PR
    "pr",  # a PR was opened, updated, or found identical (see pr.action)
    "dry-run",  # the PR that would be opened was printed, nothing touched
    "error",  # this package failed; nothing of it reached GitHub
]
STATUS_TEXT: dict[str, str] = {
    "up-to-date": "up to date",
    "already-handled": "already handled by an earlier run",
    "no-drift": "no drift",
    "trivial-recorded": "facts unchanged: recorded, will be folded into the next PR",
    "pr": "pull request",
    "dry-run": "would open a pull request",
    "error": "FAILED",
}

ACTION_TEXT: dict[str, str] = {
    "opened": "PR opened",
    "updated": "PR updated",
    "noop": "PR already up to date",
    "skipped-closed": "PR closed unmerged earlier, left closed",
    "skipped-edited": "PR branch edited by people, left alone",
    "skipped-partial": "open PR left alone (extractor could not read every fact)",
}


@dataclass(frozen=True)
class PlannedPR:
    """The PR a package's drift produced (or would produce), and what the publisher did with it."""

    title: str
    labels: tuple[str, ...]
    body: str
    fingerprint: str
    auto_merge: bool
    action: str | None = None  # opened | updated | noop | skipped-*; None: dry run
    number: int | None = None
    url: str | None = None
    notes: tuple[str, ...] = ()  # what went wrong without undoing the PR (auto-merge refused)


@dataclass(frozen=True)
class PackageOutcome:
    """What happened to one watched package in one pass."""

    package: str
    template: str
    tag: str
    status: Status
    template_version: str | None = None
    registry_version: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    severity: str | None = None
    summary: str = ""
    counts: Mapping[str, int] = field(default_factory=dict)
    facts: Mapping[str, Any] | None = None
    facts_from: str | None = None  # "package" (extracted) or "template" (nothing fetched)
    problems: tuple[str, ...] = ()
    new_models: tuple[str, ...] = ()
    removed_models: tuple[str, ...] = ()
    pr: PlannedPR | None = None
    folded: tuple[TrivialRelease, ...] = ()
    error: str | None = None
    exit_code: int = 0
    bytes_transferred: int = 0


@dataclass(frozen=True)
class RunReport:
    """Every package's outcome in one pass, plus where it looked."""

    registry: str
    dry_run: bool
    started_at: str
    outcomes: tuple[PackageOutcome, ...]

    @property
    def failed(self) -> tuple[PackageOutcome, ...]:
        """The packages that failed."""
        return tuple(o for o in self.outcomes if o.status == "error")

    @property
    def exit_code(self) -> int:
        """0 when every package went through; else the first failure's exit code."""
        return self.failed[0].exit_code or 1 if self.failed else 0

    def reason(self) -> str | None:
        """One line saying why the run failed, or None."""
        failed = self.failed
        if not failed:
            return None
        first = f"{failed[0].package}: {failed[0].error}"
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        return f"watch npm: {len(failed)} of {len(self.outcomes)} package(s) failed: {first}{more}"


def report_json(report: RunReport) -> dict[str, Any]:
    """The machine-readable report (`--json`)."""
    return {
        "registry": report.registry,
        "dry_run": report.dry_run,
        "started_at": report.started_at,
        "ok": not report.failed,
        "exit_code": report.exit_code,
        "error": report.reason(),
        "packages": [_outcome_json(o) for o in report.outcomes],
    }


def _outcome_json(o: PackageOutcome) -> dict[str, Any]:
    out = asdict(o)
    out["versions"] = {"template": o.template_version, "registry": o.registry_version}
    out["tags"] = dict(o.tags)
    out["counts"] = dict(o.counts)
    out["facts"] = dict(o.facts) if o.facts is not None else None
    out["problems"] = list(o.problems)
    out["new_models"] = list(o.new_models)
    out["removed_models"] = list(o.removed_models)
    out["folded"] = [asdict(r) for r in o.folded]
    if o.pr is not None:
        out["pr"]["labels"] = list(o.pr.labels)
        out["pr"]["notes"] = list(o.pr.notes)
    return out


def render_text(report: RunReport, *, show_body: bool) -> str:
    """Per package the versions compared and what came of it; PR bodies in full when asked."""
    mode = " (dry run: nothing is pushed or recorded)" if report.dry_run else ""
    lines = [f"driftgate watch npm — registry {report.registry}{mode}", ""]
    for o in report.outcomes:
        lines += _outcome_text(o, show_body=show_body)
    reason = report.reason()
    lines.append(reason if reason else _tally(report))
    return "\n".join(lines) + "\n"


def _tally(report: RunReport) -> str:
    """`3 package(s) checked: 2 up to date, 1 would open a pull request.`"""
    counts: dict[str, int] = {}
    for o in report.outcomes:
        action = o.pr.action if o.pr is not None and o.status == "pr" else None
        text = ACTION_TEXT.get(action or "", STATUS_TEXT[o.status])
        counts[text] = counts.get(text, 0) + 1
    parts = ", ".join(f"{n} {text}" for text, n in counts.items())
    return f"{len(report.outcomes)} package(s) checked: {parts}."


def _outcome_text(o: PackageOutcome, *, show_body: bool) -> list[str]:
    versions = f"{o.tag} {o.registry_version or '?'}, template {o.template_version or '?'}"
    lines = [f"{o.package} -> {o.template}.json: {versions}: {STATUS_TEXT[o.status]}"]
    if o.error:
        lines.append(f"  error: {o.error}")
    if o.severity and o.status not in ("up-to-date", "already-handled"):
        lines.append(f"  drift: {o.severity}" + (f" — {o.summary}" if o.summary else ""))
    lines += [f"  extractor problem: {p}" for p in o.problems]
    if o.folded:
        lines.append("  folds trivial releases: " + ", ".join(r.version for r in o.folded))
    if o.pr is not None:
        done = f"{o.pr.action} #{o.pr.number} {o.pr.url or ''}".rstrip() if o.pr.action else ""
        lines.append(f"  title: {o.pr.title}")
        lines.append(
            f"  labels: {', '.join(o.pr.labels)}" + ("  (auto-merge)" if o.pr.auto_merge else "")
        )
        if done:
            lines.append(f"  result: {done}")
        lines += [f"  note: {n}" for n in o.pr.notes]
        if show_body:
            lines += [
                "  ----- PR body -----",
                *(f"  {line}" for line in o.pr.body.splitlines()),
                "  -------------------",
            ]
    lines.append("")
    return lines
