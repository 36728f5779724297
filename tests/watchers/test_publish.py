"""Publisher against the fake GitHub API and a real bare origin: open, update, no-op, skip."""

from __future__ import annotations

import copy
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from driftgate.proxy.templates import BUNDLED_DIR, canonical_json
from driftgate.watchers.diff import diff_templates, render_markdown
from driftgate.watchers.errors import PublishError, RateLimited, SecretFound
from driftgate.watchers.github import build_github
from driftgate.watchers.pr_body import fingerprint_of
from driftgate.watchers.publish import Publisher, PublishResult, PullRequestPlan
from tests.fakes.github_api import API_PREFIX, FakeGitHub

TEMPLATE_PATH = "proxy/templates/anthropic.json"


def bundled() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((BUNDLED_DIR / "anthropic.json").read_text())
    return doc


def candidate(*models: str, drop_beta: bool = False, version: str = "9.9.9") -> dict[str, Any]:
    doc = copy.deepcopy(bundled())
    doc["source"]["version"] = version
    for m in models:
        doc["models"][m] = {"needs_review": True, "pricing": None, "context_window": None}
    if drop_beta:
        doc["api"]["betas"] = doc["api"]["betas"][1:]
    return doc


def plan_for(
    doc: dict[str, Any], *, auto_merge: bool = False, body_extra: str = ""
) -> PullRequestPlan:
    drift = diff_templates(bundled(), doc)
    labels = ("drift", "drift:npm") + (("breaking",) if drift.severity == "breaking" else ())
    title = f"drift(anthropic): @anthropic-ai/sdk 1.0.0 -> {doc['source']['version']}: {drift.summary()}"
    return PullRequestPlan(
        template="anthropic",
        path=TEMPLATE_PATH,
        content=canonical_json(doc),
        title=title,
        body=render_markdown(drift) + body_extra,
        labels=labels,
        commit_message=f"drift(anthropic): @anthropic-ai/sdk 1.0.0 -> {doc['source']['version']}",
        fingerprint=drift.fingerprint,
        auto_merge=auto_merge,
    )


class Harness:
    """A Publisher wired to the fake, recording every retry sleep."""

    def __init__(self, gh: FakeGitHub, workdir: Path, token: str | None = "test-token") -> None:
        self.gh = gh
        self.sleeps: list[float] = []
        client = build_github(token, gh.url, sleep=self.sleeps.append, min_write_interval=0)
        self.publisher = Publisher(
            repo=gh.full_name,
            remote=str(gh.origin.path),
            workdir=workdir,
            github=client,
            token=token,
            sleep=self.sleeps.append,
        )

    def publish(self, plan: PullRequestPlan) -> PublishResult:
        return self.publisher.publish(plan)


@pytest.fixture
def harness(github_api: FakeGitHub, tmp_path: Path) -> Harness:
    return Harness(github_api, tmp_path / "work")


def test_new_drift_opens_one_labelled_pr_with_the_file_on_the_bot_branch(harness: Harness) -> None:
    gh = harness.gh
    plan = plan_for(candidate("claude-new-1"))
    result = harness.publish(plan)
    assert result.action == "opened"
    pr = gh.pulls[result.number or 0]
    assert (pr.head, pr.base, pr.state) == ("driftgate/anthropic", "main", "open")
    assert pr.title == plan.title and "+1 model" in pr.title
    assert fingerprint_of(pr.body or "") == plan.fingerprint
    assert sorted(pr.labels) == ["drift", "drift:npm"]
    assert {"drift", "drift:npm"} <= set(gh.labels)
    assert gh.origin.read("driftgate/anthropic", TEMPLATE_PATH) == plan.content
    commit = gh.origin.log("driftgate/anthropic")[0]
    assert (commit.author.name, commit.author.email) == (
        "driftgate-bot",
        "driftgate-bot@users.noreply.github.com",
    )
    assert commit.message.strip() == plan.commit_message
    assert result.url and result.url.endswith(f"/pull/{result.number}")


def test_same_drift_twice_is_a_noop_that_writes_nothing(harness: Harness) -> None:
    gh = harness.gh
    plan = plan_for(candidate("claude-new-1"))
    first = harness.publish(plan)
    writes, sha = len(gh.writes()), gh.origin.branch_sha("driftgate/anthropic")
    second = harness.publish(plan)
    assert (second.action, second.number) == ("noop", first.number)
    assert len(gh.writes()) == writes
    assert gh.origin.branch_sha("driftgate/anthropic") == sha


def test_newer_drift_updates_the_open_pr_instead_of_opening_another(harness: Harness) -> None:
    gh = harness.gh
    first = harness.publish(plan_for(candidate("claude-new-1"), auto_merge=False))
    newer = plan_for(candidate("claude-new-1", "claude-new-2", version="9.9.10"))
    second = harness.publish(newer)
    assert (second.action, second.number) == ("updated", first.number)
    assert len(gh.open_pulls()) == 1
    pr = gh.pulls[first.number or 0]
    assert fingerprint_of(pr.body or "") == newer.fingerprint and pr.title == newer.title
    assert gh.origin.read("driftgate/anthropic", TEMPLATE_PATH) == newer.content
    # Force-pushed: the branch carries one bot commit on top of main, not a growing pile.
    assert gh.origin.ahead("main", "driftgate/anthropic") == 1
    # One pass's Publisher reads the repository and its label list once, however many PRs it touches.
    gets = [r.path for r in gh.requests if r.method == "GET"]
    repo_path = f"{API_PREFIX}/repos/{gh.full_name}"
    assert gets.count(repo_path) == 1 and gets.count(f"{repo_path}/labels") == 1


def test_a_bot_branch_people_pushed_to_is_never_force_pushed(harness: Harness) -> None:
    gh = harness.gh
    first = harness.publish(plan_for(candidate("claude-new-1")))
    curated = candidate("claude-new-1")
    curated["models"]["claude-new-1"] = {"needs_review": False, "context_window": 1000}
    human = gh.origin.commit_file(
        "driftgate/anthropic", TEMPLATE_PATH, canonical_json(curated), "Curate claude-new-1"
    )
    body = gh.pulls[first.number or 0].body
    newer = plan_for(candidate("claude-new-1", "claude-new-2", version="9.9.10"))
    second = harness.publish(newer)
    assert (second.action, second.number) == ("skipped-edited", first.number)
    assert "maintainer@example.invalid" in second.notes[0]
    # The maintainer's commit and the PR as they left it are untouched.
    assert gh.origin.branch_sha("driftgate/anthropic") == human
    assert gh.pulls[first.number or 0].body == body and len(gh.open_pulls()) == 1
    # One comment with the newer fingerprint and its diff, and how to hand the branch back.
    [comment] = gh.pulls[first.number or 0].comments
    assert newer.fingerprint in comment["body"] and "claude-new-2" in comment["body"]
    assert "hand the branch back" in comment["body"]
    assert harness.publish(newer).action == "skipped-edited"
    assert len(gh.pulls[first.number or 0].comments) == 1  # once per fingerprint


def test_a_partial_candidate_opens_a_pr_but_never_rewrites_an_open_one(harness: Harness) -> None:
    gh = harness.gh
    first = harness.publish(plan_for(candidate("claude-new-1")))
    sha, body = gh.origin.branch_sha("driftgate/anthropic"), gh.pulls[first.number or 0].body
    partial = replace(plan_for(candidate(version="9.9.10")), partial=True)
    second = harness.publish(partial)
    assert (second.action, second.number) == ("skipped-partial", first.number)
    assert "incomplete" in second.notes[0]
    assert gh.origin.branch_sha("driftgate/anthropic") == sha
    assert gh.pulls[first.number or 0].body == body
    # With no open PR, the same partial candidate is drift to look at: it opens one.
    gh.close_pull(first.number or 0)
    third = harness.publish(partial)
    assert third.action == "opened" and third.number != first.number


def test_breaking_label_follows_the_latest_drift(harness: Harness) -> None:
    gh = harness.gh
    first = harness.publish(plan_for(candidate(drop_beta=True)))
    assert "breaking" in gh.pulls[first.number or 0].labels
    gh.pulls[first.number or 0].labels.append("keep-me")
    harness.publish(plan_for(candidate("claude-new-1")))
    assert sorted(gh.pulls[first.number or 0].labels) == ["drift", "drift:npm", "keep-me"]


def test_pr_closed_unmerged_is_not_reopened_for_the_same_fingerprint(harness: Harness) -> None:
    gh = harness.gh
    plan = plan_for(candidate("claude-new-1"))
    first = harness.publish(plan)
    gh.close_pull(first.number or 0)
    again = harness.publish(plan)
    assert (again.action, again.number) == ("skipped-closed", first.number)
    assert gh.open_pulls() == [] and gh.pulls[first.number or 0].state == "closed"
    different = harness.publish(plan_for(candidate("claude-new-2")))
    assert different.action == "opened" and different.number != first.number


def test_merged_pr_then_new_drift_opens_a_fresh_pr(harness: Harness) -> None:
    gh = harness.gh
    plan = plan_for(candidate("claude-new-1"))
    first = harness.publish(plan)
    gh.merge_pull(first.number or 0)
    assert gh.origin.read("main", TEMPLATE_PATH) == plan.content
    assert harness.publish(plan).action == "noop"  # already on main: nothing to propose
    later = harness.publish(plan_for(candidate("claude-new-1", "claude-new-3", version="10.0.0")))
    assert later.action == "opened" and later.number != first.number
    assert gh.origin.ahead("main", "driftgate/anthropic") == 1


def test_auto_merge_is_enabled_through_graphql_when_asked(harness: Harness) -> None:
    result = harness.publish(plan_for(candidate("claude-new-1"), auto_merge=True))
    pr = harness.gh.pulls[result.number or 0]
    assert pr.auto_merge is not None and pr.auto_merge["merge_method"] == "squash"
    assert result.notes == ()
    assert any(r.path == "/api/graphql" for r in harness.gh.requests)


def test_an_update_that_is_no_longer_additive_switches_auto_merge_off(harness: Harness) -> None:
    first = harness.publish(plan_for(candidate("claude-new-1"), auto_merge=True))
    assert harness.gh.pulls[first.number or 0].auto_merge is not None
    breaking = plan_for(candidate("claude-new-1", drop_beta=True, version="9.9.10"))
    assert "breaking" in breaking.labels and not breaking.auto_merge
    second = harness.publish(breaking)
    assert (second.action, second.number) == ("updated", first.number)
    assert harness.gh.pulls[first.number or 0].auto_merge is None
    assert second.notes == ("auto-merge disabled: this drift is not eligible any more",)
    # A PR that never had auto-merge gets no GraphQL call at all.
    calls = sum(r.path == "/api/graphql" for r in harness.gh.requests)
    harness.publish(plan_for(candidate("claude-new-2", drop_beta=True, version="9.9.11")))
    assert sum(r.path == "/api/graphql" for r in harness.gh.requests) == calls


def test_secret_in_the_body_stops_everything_before_github_or_git(harness: Harness) -> None:
    gh = harness.gh
    leaked = "sk-" + "ant-" + "api03-" + "Q" * 40
    plan = plan_for(candidate("claude-new-1"), body_extra=f"\n\nx-api-key: {leaked}\n")
    with pytest.raises(SecretFound) as info:
        harness.publish(plan)
    assert leaked not in str(info.value) and "pull request body" in str(info.value)
    assert gh.requests == []
    assert gh.origin.branch_sha("driftgate/anthropic") is None


def test_server_errors_are_retried_with_backoff(harness: Harness) -> None:
    gh = harness.gh
    gh.fail_next(502, times=2, method="POST", path="/pulls")
    result = harness.publish(plan_for(candidate("claude-new-1")))
    assert result.action == "opened" and len(gh.open_pulls()) == 1
    assert [r.status for r in gh.requests if r.method == "POST" and r.path.endswith("/pulls")] == [
        502,
        502,
        201,
    ]
    # urllib3's schedule: the first retry is immediate, then backoff_factor * 2**n.
    assert harness.sleeps == [2.0]


def test_a_failed_pr_edit_is_retried(harness: Harness) -> None:
    gh = harness.gh
    first = harness.publish(plan_for(candidate("claude-new-1")))
    gh.fail_next(503, times=1, method="PATCH", path=f"/pulls/{first.number}")
    newer = plan_for(candidate("claude-new-1", "claude-new-2", version="9.9.10"))
    assert harness.publish(newer).action == "updated"
    patches = [r.status for r in gh.requests if r.method == "PATCH"]
    assert patches == [503, 200]
    assert fingerprint_of(gh.pulls[first.number or 0].body or "") == newer.fingerprint


def test_secondary_rate_limit_waits_retry_after(harness: Harness) -> None:
    harness.gh.fail_next(403, {"Retry-After": "7"}, method="GET", path="/labels")
    assert harness.publish(plan_for(candidate("claude-new-1"))).action == "opened"
    assert harness.sleeps == [7.0]


def test_429_waits_retry_after(harness: Harness) -> None:
    harness.gh.fail_next(429, {"Retry-After": "3"}, method="GET", path="/pulls")
    assert harness.publish(plan_for(candidate("claude-new-1"))).action == "opened"
    assert harness.sleeps == [3.0]


def test_primary_rate_limit_waits_until_reset(harness: Harness) -> None:
    reset = str(int(time.time()) + 30)
    harness.gh.fail_next(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
    assert harness.publish(plan_for(candidate("claude-new-1"))).action == "opened"
    assert len(harness.sleeps) == 1 and 20 < harness.sleeps[0] <= 32


def test_primary_rate_limit_far_away_stops_the_run_without_writes(harness: Harness) -> None:
    gh = harness.gh
    reset = str(int(time.time()) + 3000)
    gh.fail_next(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}, times=10)
    with pytest.raises(RateLimited):
        harness.publish(plan_for(candidate("claude-new-1")))
    assert gh.writes() == [] and harness.sleeps == []


def test_nearly_exhausted_rate_limit_stops_before_touching_anything(harness: Harness) -> None:
    gh = harness.gh
    gh.set_rate_limit(5)
    with pytest.raises(RateLimited, match="nothing was changed"):
        harness.publish(plan_for(candidate("claude-new-1")))
    assert gh.writes() == [] and gh.origin.branch_sha("driftgate/anthropic") is None


def test_persistent_server_error_fails_with_one_line_and_opens_nothing(harness: Harness) -> None:
    gh = harness.gh
    gh.fail_next(500, times=50, method="POST", path="/pulls")
    with pytest.raises(PublishError) as info:
        harness.publish(plan_for(candidate("claude-new-1")))
    assert "\n" not in str(info.value) and "opening the pull request" in str(info.value)
    assert gh.pulls == {}


def test_token_never_lands_in_the_workdir(github_api: FakeGitHub, tmp_path: Path) -> None:
    token = "gh" + "p_" + "T0k3n" * 8
    workdir = tmp_path / "work"
    harness = Harness(github_api, workdir, token=token)
    harness.publish(plan_for(candidate("claude-new-1")))
    harness.publish(plan_for(candidate("claude-new-2")))
    files = [p for p in workdir.rglob("*") if p.is_file()]
    assert any(p.name == "config" and p.parent.name == ".git" for p in files)
    assert not [p for p in files if token.encode() in p.read_bytes()]
    assert all(r.authenticated for r in github_api.requests)


def test_oversized_body_is_cut_below_githubs_limit_keeping_sections(harness: Harness) -> None:
    extra = (
        "\n\n## Provenance\n\npackage: @anthropic-ai/sdk\n\n```diff\n"
        + "+ line\n" * 20_000
        + "```\n"
    )
    extra += "\n## Reviewer checklist\n\n- [ ] read the runbook\n"
    plan = plan_for(candidate("claude-new-1"), body_extra=extra)
    result = harness.publish(plan)
    body = harness.gh.pulls[result.number or 0].body or ""
    assert len(body) < 65_536
    assert "## Provenance" in body and "## Reviewer checklist" in body and "truncated" in body
    assert fingerprint_of(body) == plan.fingerprint


def test_repo_must_be_owner_slash_name(github_api: FakeGitHub, tmp_path: Path) -> None:
    client = build_github(None, github_api.url, min_write_interval=0)
    with pytest.raises(PublishError, match="OWNER/NAME"):
        Publisher(
            repo="nope",
            remote=str(github_api.origin.path),
            workdir=tmp_path,
            github=client,
            token=None,
        )


def test_secondary_rate_limit_without_retry_after_waits_a_minute(harness: Harness) -> None:
    harness.gh.fail_next(403, method="GET", path="/pulls")
    assert harness.publish(plan_for(candidate("claude-new-1"))).action == "opened"
    assert harness.sleeps == [60.0]
