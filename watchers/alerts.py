"""Alert issues: one open issue per alert key, fingerprinted, commented on repeat, closed on recovery."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from github.Issue import Issue
from github.Repository import Repository

from driftgate.watchers.pr_body import fingerprint_marker, fingerprint_of, truncate_body

KEY_RE = re.compile(r"<!-- driftgate:alert=([A-Za-z0-9:._/-]+) -->")


@dataclass(frozen=True)
class AlertPlan:
    """An alert to raise: `key` names what is wrong (`canary:anthropic`), `fingerprint` how."""

    key: str
    label: str  # drift:canary, drift:liveness
    title: str
    body: str
    fingerprint: str
    repeat_comment: str  # posted when the same alert is seen again ("": say nothing)


@dataclass(frozen=True)
class AlertResult:
    """What raising or clearing an alert did."""

    action: Literal["opened", "commented", "unchanged", "updated", "closed", "none"]
    number: int | None = None
    url: str | None = None


def alert_fingerprint(facts: Any) -> str:
    """sha256 of the facts' canonical JSON: the same failure twice has the same fingerprint."""
    text = json.dumps(facts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def alert_marker(key: str) -> str:
    """The hidden comment that says which alert an issue is."""
    return f"<!-- driftgate:alert={key} -->"


def alert_key_of(body: str) -> str | None:
    """The alert key recorded in an issue body, if any."""
    m = KEY_RE.search(body)
    return m.group(1) if m else None


def issue_body(plan: AlertPlan) -> str:
    """The body as sent: truncated below GitHub's limit, then the two hidden markers."""
    return (
        truncate_body(plan.body)
        + "\n\n"
        + alert_marker(plan.key)
        + "\n"
        + fingerprint_marker(plan.fingerprint)
        + "\n"
    )


def open_alerts(repo: Repository, label: str) -> dict[str, Issue]:
    """Open issues carrying `label` and an alert marker, by key (the oldest wins a duplicate)."""
    found: dict[str, Issue] = {}
    for item in repo.get_issues(state="open", labels=[label], sort="created", direction="asc"):
        if item.pull_request is not None:
            continue
        key = alert_key_of(item.body or "")
        if key is not None and key not in found:
            found[key] = item
    return found


def raise_alert(
    repo: Repository,
    plan: AlertPlan,
    existing: Issue | None,
    ensure_labels: Callable[[Repository, tuple[str, ...]], None],
) -> AlertResult:
    """Open the alert, or comment on it (same fingerprint), or rewrite it and comment (new one)."""
    if existing is None:
        labels = ("drift", plan.label)
        ensure_labels(repo, labels)
        item = repo.create_issue(title=plan.title, body=issue_body(plan), labels=list(labels))
        return AlertResult("opened", item.number, item.html_url)
    if fingerprint_of(existing.body or "") == plan.fingerprint:
        if not plan.repeat_comment:
            return AlertResult("unchanged", existing.number, existing.html_url)
        existing.create_comment(plan.repeat_comment)
        return AlertResult("commented", existing.number, existing.html_url)
    existing.edit(title=plan.title, body=issue_body(plan))
    existing.create_comment(
        ("The alert changed; the description above is current.\n\n" + plan.repeat_comment).strip()
    )
    return AlertResult("updated", existing.number, existing.html_url)


def clear_alert(existing: Issue | None, comment: str) -> AlertResult:
    """Close the alert with a comment saying why; nothing to do when none is open."""
    if existing is None:
        return AlertResult("none")
    existing.create_comment(comment)
    existing.edit(state="closed", state_reason="completed")
    return AlertResult("closed", existing.number, existing.html_url)
