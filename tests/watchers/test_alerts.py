"""Alert issues and Actions runs through the platform facade (Publisher) against the fake GitHub API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from driftgate.watchers.alerts import AlertPlan, alert_fingerprint, alert_key_of
from driftgate.watchers.errors import PublishError, SecretFound
from driftgate.watchers.github import build_github
from driftgate.watchers.pr_body import fingerprint_of
from driftgate.watchers.publish import Publisher
from tests.fakes.github_api import FakeGitHub


def publisher(gh: FakeGitHub, tmp_path: Path) -> Publisher:
    client = build_github("t", gh.url, sleep=lambda _s: None, min_write_interval=0)
    return Publisher(
        repo=gh.full_name,
        remote=str(gh.origin.path),
        workdir=tmp_path / "work",
        github=client,
        token="t",
        sleep=lambda _s: None,
    )


def plan(facts: object, key: str = "canary:anthropic") -> AlertPlan:
    return AlertPlan(
        key=key,
        label="drift:canary",
        title=f"canary: {key} diverged",
        body=f"Divergence: {facts}",
        fingerprint=alert_fingerprint(facts),
        repeat_comment=f"Seen again: {facts}",
    )


def test_alert_lifecycle_open_comment_update_close(github_api: FakeGitHub, tmp_path: Path) -> None:
    opened = publisher(github_api, tmp_path).raise_alert(plan(["opus retired"]))
    assert opened.action == "opened"
    [issue] = github_api.open_issues("drift:canary")
    assert issue.number == opened.number and set(issue.labels) == {"drift", "drift:canary"}
    assert alert_key_of(issue.body or "") == "canary:anthropic"
    assert fingerprint_of(issue.body or "") == alert_fingerprint(["opus retired"])

    # A later run (a new Publisher) sees the same divergence: one comment, no second issue.
    again = publisher(github_api, tmp_path).raise_alert(plan(["opus retired"]))
    assert (again.action, again.number) == ("commented", opened.number)
    assert [c["body"] for c in issue.comments] == ["Seen again: ['opus retired']"]
    assert len(github_api.issues) == 1

    changed = publisher(github_api, tmp_path).raise_alert(plan(["opus retired", "beta refused"]))
    assert changed.action == "updated" and "beta refused" in (issue.body or "")
    assert fingerprint_of(issue.body or "") == alert_fingerprint(["opus retired", "beta refused"])

    # Another key is another issue.
    other = publisher(github_api, tmp_path).raise_alert(plan(["x"], key="canary:openai"))
    assert other.action == "opened" and other.number != opened.number

    closed = publisher(github_api, tmp_path).clear_alert(
        "canary:anthropic", "drift:canary", "Recovered: every probe passed."
    )
    assert (closed.action, closed.number) == ("closed", opened.number)
    assert issue.state == "closed" and issue.state_reason == "completed"
    assert issue.comments[-1]["body"] == "Recovered: every probe passed."
    nothing = publisher(github_api, tmp_path).clear_alert("canary:anthropic", "drift:canary", "x")
    assert nothing.action == "none"


def test_pull_requests_and_unmarked_issues_are_not_alerts(
    github_api: FakeGitHub, tmp_path: Path
) -> None:
    repo = build_github("t", github_api.url, min_write_interval=0).get_repo(github_api.full_name)
    repo.create_issue(title="a person's issue", body="no marker", labels=["drift:canary"])
    pub = publisher(github_api, tmp_path)
    assert pub.open_alerts("drift:canary") == frozenset()
    assert pub.raise_alert(plan(["a"])).action == "opened"


def test_the_secret_gate_runs_before_an_issue_is_written(
    github_api: FakeGitHub, tmp_path: Path
) -> None:
    leaky = plan(["sk-ant-api03-" + "A" * 40])
    with pytest.raises(SecretFound):
        publisher(github_api, tmp_path).raise_alert(leaky)
    assert github_api.writes() == []


def test_workflow_history_and_dispatch(github_api: FakeGitHub, tmp_path: Path) -> None:
    github_api.add_run(".github/workflows/watch-npm.yml", ago=timedelta(hours=5))
    github_api.add_run(
        ".github/workflows/watch-npm.yml", conclusion="failure", ago=timedelta(hours=1)
    )
    pub = publisher(github_api, tmp_path)
    seen = pub.workflow_history("watch-npm.yml")
    assert seen is not None
    assert seen.last_success is not None and seen.redispatched_at is None
    assert seen_age(seen.last_success) > timedelta(hours=4, minutes=59)
    pub.dispatch_workflow("watch-npm.yml")
    assert github_api.dispatches == [(".github/workflows/watch-npm.yml", "main", {})]
    after = pub.workflow_history("watch-npm.yml")
    assert after is not None
    assert after.redispatched_at is not None and after.redispatch_pending
    assert pub.workflow_history("watch-nothing.yml") is None
    github_api.fail_next(403, path="/actions/", message="Resource not accessible by integration")
    with pytest.raises(PublishError, match="403"):
        pub.workflow_history("watch-npm.yml")


def seen_age(moment: datetime | None) -> timedelta:
    assert moment is not None
    return datetime.now(UTC) - moment
