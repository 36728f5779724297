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
