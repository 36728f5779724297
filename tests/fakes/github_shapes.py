"""GitHub REST objects for the fake server, built from the OpenAPI description's own examples."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.fakes.github_openapi import example

BOT_LOGIN = "driftgate-bot"


def now_iso() -> str:
    """The current time as GitHub writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakePull:
    """One pull request as the fake holds it."""

    number: int
    title: str
    body: str | None
    head: str
    base: str
    head_sha: str
    base_sha: str
    created_at: str
    updated_at: str
    state: str = "open"
    merged: bool = False
    merged_at: str | None = None
    closed_at: str | None = None
    merge_commit_sha: str | None = None
    labels: list[str] = field(default_factory=list)
    auto_merge: dict[str, Any] | None = None
    comments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def node_id(self) -> str:
        """The GraphQL id of this pull request."""
        return base64.b64encode(f"PullRequest{self.number}".encode()).decode()


@dataclass(frozen=True)
class Urls:
    """Where the fake lives: API base (what PyGithub is given), web base, and the repository."""

    api: str
    web: str
    owner: str
    name: str

    @property
    def full_name(self) -> str:
        """OWNER/NAME."""
        return f"{self.owner}/{self.name}"

    def rebase(self, obj: Any) -> Any:
        """An example object with GitHub's hosts and the sample repository replaced by the fake's."""
        text = json.dumps(obj)
        text = text.replace("https://api.github.com", self.api)
        text = text.replace("https://github.com", self.web)
        text = text.replace("octocat/Hello-World", self.full_name)
        return json.loads(text)


def user(urls: Urls, login: str = BOT_LOGIN, *, uid: int = 2, kind: str = "Bot") -> dict[str, Any]:
    """A simple-user."""
    out = urls.rebase(example("simple-user"))
    text = json.dumps(out).replace("octocat", login)
    out = json.loads(text)
    out.update(id=uid, login=login, type=kind, node_id=f"U_{uid}")
    return dict(out)


def repository(urls: Urls, default_branch: str) -> dict[str, Any]:
    """A full-repository for the fake's one repository."""
    repo = urls.rebase(example("full-repository-default-response"))
    for key in ("template_repository", "parent", "source", "organization"):
        repo.pop(key, None)
    repo.update(
        id=1001,
        node_id="R_1001",
        name=urls.name,
        full_name=urls.full_name,
        owner=user(urls, urls.owner, uid=1, kind="Organization"),
        private=False,
        fork=False,
        description="driftgate test repository",
        default_branch=default_branch,
        language="Python",
        allow_auto_merge=True,
        topics=[],
        open_issues_count=0,
        open_issues=0,
    )
    return dict(repo)


def label(urls: Urls, name: str, color: str, description: str | None, lid: int) -> dict[str, Any]:
    """A label."""
    return {
        "id": lid,
        "node_id": f"LA_{lid}",
        "url": f"{urls.api}/repos/{urls.full_name}/labels/{name}",
        "name": name,
        "description": description,
        "color": color,
        "default": False,
    }


def pull(
    urls: Urls, pr: FakePull, labels: list[dict[str, Any]], repo: dict[str, Any]
) -> dict[str, Any]:
    """A pull-request (also fine where the description asks for pull-request-simple)."""
    out = urls.rebase(example("pull-request"))
    text = json.dumps(out).replace("/1347", f"/{pr.number}")
    out = json.loads(text)
    bot = user(urls)
    api_pr = f"{urls.api}/repos/{urls.full_name}/pulls/{pr.number}"
    out.update(
        id=100_000 + pr.number,
        node_id=pr.node_id,
        number=pr.number,
        url=api_pr,
        state=pr.state,
        locked=False,
        title=pr.title,
        body=pr.body,
        user=bot,
        labels=labels,
        milestone=None,
        active_lock_reason=None,
        created_at=pr.created_at,
        updated_at=pr.updated_at,
        closed_at=pr.closed_at,
        merged_at=pr.merged_at,
        merge_commit_sha=pr.merge_commit_sha,
        assignee=None,
        assignees=[],
        requested_reviewers=[],
        requested_teams=[],
        author_association="NONE",
        auto_merge=pr.auto_merge,
        draft=False,
        merged=pr.merged,
        mergeable=None if pr.state != "open" else True,
        rebaseable=None if pr.state != "open" else True,
        mergeable_state="clean",
        merged_by=bot if pr.merged else None,
        comments=len(pr.comments),
        review_comments=0,
        maintainer_can_modify=False,
        commits=1,
        additions=1,
        deletions=1,
        changed_files=1,
        statuses_url=f"{urls.api}/repos/{urls.full_name}/statuses/{pr.head_sha}",
    )
    owner = repo["owner"]
    out["head"] = {
        "label": f"{urls.owner}:{pr.head}",
        "ref": pr.head,
        "sha": pr.head_sha,
        "user": owner,
        "repo": repo,
    }
    out["base"] = {
        "label": f"{urls.owner}:{pr.base}",
        "ref": pr.base,
        "sha": pr.base_sha,
        "user": owner,
        "repo": repo,
    }
    out["_links"]["statuses"] = {"href": out["statuses_url"]}
    return dict(out)


def issue_comment(urls: Urls, number: int, cid: int, body: str, when: str) -> dict[str, Any]:
    """An issue-comment on pull request `number`."""
    out = urls.rebase(example("issue-comment"))
    out.update(
        id=cid,
        node_id=f"IC_{cid}",
        url=f"{urls.api}/repos/{urls.full_name}/issues/comments/{cid}",
        html_url=f"{urls.web}/{urls.full_name}/pull/{number}#issuecomment-{cid}",
        issue_url=f"{urls.api}/repos/{urls.full_name}/issues/{number}",
        body=body,
        user=user(urls),
        created_at=when,
        updated_at=when,
        author_association="NONE",
    )
    out.pop("performed_via_github_app", None)
    out.pop("reactions", None)
    return dict(out)


def git_ref(urls: Urls, ref: str, sha: str) -> dict[str, Any]:
    """A git-ref."""
    return {
        "ref": ref,
        "node_id": f"REF_{ref}",
        "url": f"{urls.api}/repos/{urls.full_name}/git/{ref}",
        "object": {
            "type": "commit",
            "sha": sha,
            "url": f"{urls.api}/repos/{urls.full_name}/git/commits/{sha}",
        },
    }


def error(message: str, **extra: Any) -> dict[str, Any]:
    """A basic-error body."""
    return {"message": message, "documentation_url": "https://docs.github.com/rest", **extra}


@dataclass
class FakeIssue:
    """One issue as the fake holds it (issues and pull requests share the number space)."""

    number: int
    title: str
    body: str | None
    created_at: str
    updated_at: str
    state: str = "open"
    closed_at: str | None = None
    state_reason: str | None = None
    labels: list[str] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FakeWorkflow:
    """One workflow file of the repository, as the Actions API lists it."""

    wid: int
    name: str
    path: str  # .github/workflows/NAME.yml
    state: str = "active"


@dataclass
class FakeRun:
    """One workflow run: `status` queued|in_progress|completed, `conclusion` success|failure|..."""

    rid: int
    workflow: FakeWorkflow
    event: str
    status: str
    conclusion: str | None
    created_at: str
    head_branch: str = "main"
    run_number: int = 1


def issue(urls: Urls, item: FakeIssue, labels: list[dict[str, Any]]) -> dict[str, Any]:
    """An issue (not a pull request: no `pull_request` key)."""
    out = urls.rebase(example("issue"))
    out.pop("pull_request", None)
    out.pop("pinned_comment", None)
    api = f"{urls.api}/repos/{urls.full_name}/issues/{item.number}"
    out.update(
        id=200_000 + item.number,
        node_id=f"I_{item.number}",
        url=api,
        repository_url=f"{urls.api}/repos/{urls.full_name}",
        labels_url=api + "/labels{/name}",
        comments_url=api + "/comments",
        events_url=api + "/events",
        html_url=f"{urls.web}/{urls.full_name}/issues/{item.number}",
        number=item.number,
        state=item.state,
        state_reason=item.state_reason,
        title=item.title,
        body=item.body,
        user=user(urls),
        labels=labels,
        assignee=None,
        assignees=[],
        milestone=None,
        locked=False,
        active_lock_reason=None,
        comments=len(item.comments),
        closed_at=item.closed_at,
        closed_by=user(urls) if item.state == "closed" else None,
        created_at=item.created_at,
        updated_at=item.updated_at,
        author_association="NONE",
    )
    if item.state_reason is None:
        # The description's enum has no null although GitHub sends one for open issues.
        out.pop("state_reason")
    return dict(out)


def workflow(urls: Urls, wf: FakeWorkflow) -> dict[str, Any]:
    """A workflow."""
    out = dict(example("workflow"))
    out.update(
        id=wf.wid,
        node_id=f"W_{wf.wid}",
        name=wf.name,
        path=wf.path,
        state=wf.state,
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
        url=f"{urls.api}/repos/{urls.full_name}/actions/workflows/{wf.wid}",
        html_url=f"{urls.web}/{urls.full_name}/blob/main/{wf.path}",
        badge_url=f"{urls.web}/{urls.full_name}/workflows/{wf.name}/badge.svg",
    )
    return out


def workflow_run(urls: Urls, run: FakeRun, repo: dict[str, Any]) -> dict[str, Any]:
    """A workflow-run."""
    out = urls.rebase(example("workflow-run"))
    api = f"{urls.api}/repos/{urls.full_name}/actions/runs/{run.rid}"
    out.update(
        id=run.rid,
        node_id=f"WFR_{run.rid}",
        name=run.workflow.name,
        display_title=run.workflow.name,
        path=f"{run.workflow.path}@{run.head_branch}",
        event=run.event,
        status=run.status,
        conclusion=run.conclusion,
        workflow_id=run.workflow.wid,
        workflow_url=f"{urls.api}/repos/{urls.full_name}/actions/workflows/{run.workflow.wid}",
        created_at=run.created_at,
        updated_at=run.created_at,
        run_started_at=run.created_at,
        head_branch=run.head_branch,
        run_number=run.run_number,
        run_attempt=1,
        url=api,
        html_url=f"{urls.web}/{urls.full_name}/actions/runs/{run.rid}",
        repository=repo,
        head_repository=repo,
        pull_requests=[],
    )
    return dict(out)
