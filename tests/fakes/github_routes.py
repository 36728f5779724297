"""The fake GitHub's REST operations, one function per OpenAPI operation it implements."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tests.fakes import github_shapes as shapes
from tests.fakes.github_git import MergeConflict

if TYPE_CHECKING:
    from tests.fakes.github_api import FakeGitHub

Reply = tuple[int, Any]
Handler = Callable[["FakeGitHub", dict[str, str], dict[str, str], Any], Reply]
ROUTES: list[tuple[str, str, Handler]] = []
REPO = "/repos/{owner}/{repo}"


def route(method: str, path: str) -> Callable[[Handler], Handler]:
    """Register a handler for the OpenAPI operation METHOD path."""

    def register(fn: Handler) -> Handler:
        ROUTES.append((method, path, fn))
        return fn

    return register


def _not_found() -> Reply:
    return 404, shapes.error("Not Found")


def _invalid(message: str, resource: str = "PullRequest") -> Reply:
    return 422, shapes.error(
        "Validation Failed", errors=[{"resource": resource, "code": "custom", "message": message}]
    )


def _wrong_repo(gh: FakeGitHub, match: dict[str, str]) -> bool:
    return f"{match.get('owner')}/{match.get('repo')}".lower() != gh.full_name.lower()


def _labels_of(gh: FakeGitHub, names: list[str]) -> list[dict[str, Any]]:
    return [gh.labels[n] for n in names if n in gh.labels]


def _pull_json(gh: FakeGitHub, pr: shapes.FakePull) -> dict[str, Any]:
    repo = shapes.repository(gh.urls, gh.default_branch)
    return shapes.pull(gh.urls, pr, _labels_of(gh, pr.labels), repo)


def _thread(gh: FakeGitHub, match: dict[str, str]) -> shapes.FakePull | shapes.FakeIssue | None:
    """The pull request or issue `issue_number` names (they share one number space)."""
    if _wrong_repo(gh, match):
        return None
    try:
        number = int(match["issue_number"])
    except ValueError:
        return None
    return gh.pulls.get(number) or gh.issues.get(number)


def _pull(
    gh: FakeGitHub, match: dict[str, str], key: str = "pull_number"
) -> shapes.FakePull | None:
    if _wrong_repo(gh, match):
        return None
    try:
        return gh.pulls.get(int(match[key]))
    except ValueError:
        return None


@route("GET", REPO)
def get_repo(gh: FakeGitHub, match: dict[str, str], _q: dict[str, str], _p: Any) -> Reply:
    """GET a repository."""
    if _wrong_repo(gh, match):
        return _not_found()
    repo = shapes.repository(gh.urls, gh.default_branch)
    if gh.clone_url is not None:
        repo["clone_url"] = gh.clone_url
    return 200, repo


@route("GET", REPO + "/pulls")
def list_pulls(gh: FakeGitHub, match: dict[str, str], query: dict[str, str], _p: Any) -> Reply:
    """List pull requests, filtered by state, head (OWNER:BRANCH) and base."""
    if _wrong_repo(gh, match):
        return _not_found()
    state = query.get("state", "open")
    head = query.get("head")
    pulls = [
        p
        for p in gh.pulls.values()
        if state in ("all", p.state)
        and (head is None or head in (f"{gh.owner}:{p.head}", p.head))
        and query.get("base") in (None, p.base)
    ]
    pulls.sort(key=lambda p: p.number, reverse=query.get("direction", "desc") == "desc")
    return 200, [_pull_json(gh, p) for p in pulls]


@route("POST", REPO + "/pulls")
def create_pull(gh: FakeGitHub, match: dict[str, str], _q: dict[str, str], payload: Any) -> Reply:
    """Open a pull request; GitHub refuses a second open one from the same head."""
    if _wrong_repo(gh, match):
        return _not_found()
    data = payload or {}
    head = str(data.get("head", "")).split(":")[-1]
    base = str(data.get("base", ""))
    if not data.get("title"):
        return _invalid("title is missing")
    head_sha, base_sha = gh.origin.branch_sha(head), gh.origin.branch_sha(base)
    if head_sha is None or base_sha is None:
        return _invalid(f"head {head!r} or base {base!r} does not exist")
    if gh.open_pulls(head):
        return _invalid(f"A pull request already exists for {gh.owner}:{head}.")
    if gh.origin.ahead(base, head) == 0:
        return _invalid(f"No commits between {base} and {head}")
    stamp = shapes.now_iso()
    pr = shapes.FakePull(
        number=gh.new_id(),
        title=str(data["title"]),
        body=data.get("body"),
        head=head,
        base=base,
        head_sha=head_sha,
        base_sha=base_sha,
        created_at=stamp,
        updated_at=stamp,
    )
    gh.pulls[pr.number] = pr
    return 201, _pull_json(gh, pr)


@route("GET", REPO + "/pulls/{pull_number}")
def get_pull(gh: FakeGitHub, match: dict[str, str], _q: dict[str, str], _p: Any) -> Reply:
    """GET one pull request."""
    pr = _pull(gh, match)
    return (200, _pull_json(gh, pr)) if pr else _not_found()


@route("PATCH", REPO + "/pulls/{pull_number}")
def update_pull(gh: FakeGitHub, match: dict[str, str], _q: dict[str, str], payload: Any) -> Reply:
    """Edit title, body or state; the head sha follows the branch (force-pushes show up)."""
    pr = _pull(gh, match)
    if pr is None:
        return _not_found()
    data = payload or {}
    if "title" in data:
        pr.title = str(data["title"])
    if "body" in data:
        pr.body = data["body"]
    if data.get("state") == "closed" and pr.state == "open":
        pr.state, pr.closed_at = "closed", shapes.now_iso()
    elif data.get("state") == "open" and pr.state == "closed":
        if pr.merged:
            return _invalid("state cannot be changed. The pull request has been merged.")
        pr.state, pr.closed_at = "open", None
    pr.head_sha = gh.origin.branch_sha(pr.head) or pr.head_sha
    pr.updated_at = shapes.now_iso()
    return 200, _pull_json(gh, pr)


@route("PUT", REPO + "/pulls/{pull_number}/merge")
def merge_pull(gh: FakeGitHub, match: dict[str, str], _q: dict[str, str], _p: Any) -> Reply:
    """Merge for real in the bare origin."""
    pr = _pull(gh, match)
    if pr is None:
        return _not_found()
    if pr.state != "open":
        return 405, shapes.error("Pull Request is not mergeable")
    try:
        sha = gh.merge_pull(pr.number)
    except MergeConflict:
        return 405, shapes.error("Pull Request is not mergeable")
    return 200, {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}


@route("GET", REPO + "/labels")
def list_labels(gh: FakeGitHub, match: dict[str, str], _q: dict[str, str], _p: Any) -> Reply:
    """List the repository's labels."""
    return _not_found() if _wrong_repo(gh, match) else (200, list(gh.labels.values()))


@route("POST", REPO + "/labels")
def create_label(gh: FakeGitHub, match: dict[str, str], _q: dict[str, str], payload: Any) -> Reply:
    """Create a label; an existing name is a 422 as on GitHub."""
    if _wrong_repo(gh, match):
        return _not_found()
    data = payload or {}
    name = str(data.get("name", ""))
    if not name or name in gh.labels:
        return _invalid("already_exists" if name else "name is missing", resource="Label")
    gh.labels[name] = shapes.label(
        gh.urls, name, str(data.get("color", "ededed")), data.get("description"), gh.new_id()
    )
    return 201, gh.labels[name]


def _issue_label_names(payload: Any) -> list[str]:
    items = payload.get("labels", []) if isinstance(payload, dict) else payload or []
    return [str(i["name"]) if isinstance(i, dict) else str(i) for i in items]


@route("GET", REPO + "/issues/{issue_number}/labels")
def list_issue_labels(gh: FakeGitHub, match: dict[str, str], _q: dict[str, str], _p: Any) -> Reply:
    """Labels on a pull request or issue."""
    pr = _thread(gh, match)
    return (200, _labels_of(gh, pr.labels)) if pr else _not_found()


@route("POST", REPO + "/issues/{issue_number}/labels")
def add_issue_labels(
    gh: FakeGitHub, match: dict[str, str], _q: dict[str, str], payload: Any
) -> Reply:
    """Add labels (creating unknown ones, as GitHub does)."""
    pr = _thread(gh, match)
    if pr is None:
        return _not_found()
    for name in _issue_label_names(payload):
        if name not in gh.labels:
            gh.labels[name] = shapes.label(gh.urls, name, "ededed", None, gh.new_id())
        if name not in pr.labels:
            pr.labels.append(name)
    return 200, _labels_of(gh, pr.labels)


@route("PUT", REPO + "/issues/{issue_number}/labels")
def set_issue_labels(
    gh: FakeGitHub, match: dict[str, str], q: dict[str, str], payload: Any
) -> Reply:
    """Replace the labels of a pull request or issue."""
    pr = _thread(gh, match)
    if pr is None:
        return _not_found()
    pr.labels = []
    return add_issue_labels(gh, match, q, payload)


@route("DELETE", REPO + "/issues/{issue_number}/labels/{name}")
def remove_issue_label(gh: FakeGitHub, match: dict[str, str], _q: dict[str, str], _p: Any) -> Reply:
    """Take one label off a pull request or issue."""
    pr = _thread(gh, match)
    if pr is None or match["name"] not in pr.labels:
        return _not_found()
    pr.labels.remove(match["name"])
    return 200, _labels_of(gh, pr.labels)


@route("GET", REPO + "/issues/{issue_number}/comments")
def list_comments(gh: FakeGitHub, match: dict[str, str], _q: dict[str, str], _p: Any) -> Reply:
    """Comments on a pull request or issue."""
    pr = _thread(gh, match)
    return (200, list(pr.comments)) if pr else _not_found()


@route("POST", REPO + "/issues/{issue_number}/comments")
def add_comment(gh: FakeGitHub, match: dict[str, str], _q: dict[str, str], payload: Any) -> Reply:
    """Comment on a pull request or issue."""
    pr = _thread(gh, match)
    if pr is None:
        return _not_found()
    body = str((payload or {}).get("body", ""))
    if not body:
        return _invalid("body is missing", resource="IssueComment")
    comment = shapes.issue_comment(gh.urls, pr.number, gh.new_id(), body, shapes.now_iso())
    pr.comments.append(comment)
    return 201, comment


@route("GET", REPO + "/git/ref/{ref}")
def get_ref(gh: FakeGitHub, match: dict[str, str], _q: dict[str, str], _p: Any) -> Reply:
    """One git ref (heads/BRANCH) of the origin repository."""
    ref = match["ref"]
    sha = gh.origin.branch_sha(ref.removeprefix("heads/")) if ref.startswith("heads/") else None
    if _wrong_repo(gh, match) or sha is None:
        return _not_found()
    return 200, shapes.git_ref(gh.urls, f"refs/{ref}", sha)
