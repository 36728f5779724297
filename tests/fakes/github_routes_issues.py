"""The fake GitHub's issue operations: list (with PRs mixed in, as GitHub does), create, get, edit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes import github_shapes as shapes
from tests.fakes.github_routes import (
    REPO,
    Reply,
    _invalid,
    _labels_of,
    _not_found,
    _wrong_repo,
    route,
)

if TYPE_CHECKING:
    from tests.fakes.github_api import FakeGitHub


def issue_json(gh: FakeGitHub, item: shapes.FakeIssue) -> dict[str, Any]:
    """The issue as the API returns it."""
    return shapes.issue(gh.urls, item, _labels_of(gh, item.labels))


def _issue(gh: FakeGitHub, match: dict[str, str]) -> shapes.FakeIssue | None:
    if _wrong_repo(gh, match):
        return None
    try:
        return gh.issues.get(int(match["issue_number"]))
    except ValueError:
        return None


def _pull_as_issue(gh: FakeGitHub, pr: shapes.FakePull) -> dict[str, Any]:
    """A pull request in the issues list: an issue with a `pull_request` key."""
    item = shapes.FakeIssue(
        pr.number, pr.title, pr.body, pr.created_at, pr.updated_at, pr.state, pr.closed_at
    )
    out = issue_json(gh, item)
    web = f"{gh.urls.web}/{gh.full_name}/pull/{pr.number}"
    out["pull_request"] = {
        "url": f"{gh.url}/repos/{gh.full_name}/pulls/{pr.number}",
        "html_url": web,
        "diff_url": web + ".diff",
        "patch_url": web + ".patch",
        "merged_at": pr.merged_at,
    }
    out["labels"] = _labels_of(gh, pr.labels)
    return out


@route("GET", REPO + "/issues")
def list_issues(gh: FakeGitHub, match: dict[str, str], query: dict[str, str], _p: Any) -> Reply:
    """List issues and pull requests, filtered by state and labels (all must match)."""
    if _wrong_repo(gh, match):
        return _not_found()
    state = query.get("state", "open")
    wanted = [w for w in query.get("labels", "").split(",") if w]
    items: list[tuple[int, dict[str, Any]]] = []
    for item in gh.issues.values():
        if state in ("all", item.state) and all(w in item.labels for w in wanted):
            items.append((item.number, issue_json(gh, item)))
    for pr in gh.pulls.values():
        if state in ("all", pr.state) and all(w in pr.labels for w in wanted):
            items.append((pr.number, _pull_as_issue(gh, pr)))
    items.sort(key=lambda pair: pair[0], reverse=query.get("direction", "desc") == "desc")
    return 200, [body for _n, body in items]


@route("POST", REPO + "/issues")
def create_issue(gh: FakeGitHub, match: dict[str, str], _q: dict[str, str], payload: Any) -> Reply:
    """Open an issue, creating unknown labels as GitHub does."""
    if _wrong_repo(gh, match):
        return _not_found()
    data = payload or {}
    if not data.get("title"):
        return _invalid("title is missing", resource="Issue")
    stamp = shapes.now_iso()
    item = shapes.FakeIssue(gh.new_id(), str(data["title"]), data.get("body"), stamp, stamp)
    for name in data.get("labels") or []:
        name = str(name["name"] if isinstance(name, dict) else name)
        if name not in gh.labels:
            gh.labels[name] = shapes.label(gh.urls, name, "ededed", None, gh.new_id())
        item.labels.append(name)
    gh.issues[item.number] = item
    return 201, issue_json(gh, item)


@route("GET", REPO + "/issues/{issue_number}")
def get_issue(gh: FakeGitHub, match: dict[str, str], _q: dict[str, str], _p: Any) -> Reply:
    """GET one issue."""
    item = _issue(gh, match)
    return (200, issue_json(gh, item)) if item else _not_found()


@route("PATCH", REPO + "/issues/{issue_number}")
def update_issue(gh: FakeGitHub, match: dict[str, str], _q: dict[str, str], payload: Any) -> Reply:
    """Edit title, body or state (closing records `state_reason`)."""
    item = _issue(gh, match)
    if item is None:
        return _not_found()
    data = payload or {}
    if "title" in data:
        item.title = str(data["title"])
    if "body" in data:
        item.body = data["body"]
    if data.get("state") == "closed" and item.state == "open":
        item.state, item.closed_at = "closed", shapes.now_iso()
        item.state_reason = str(data.get("state_reason") or "completed")
    elif data.get("state") == "open" and item.state == "closed":
        item.state, item.closed_at, item.state_reason = "open", None, "reopened"
    item.updated_at = shapes.now_iso()
    return 200, issue_json(gh, item)
