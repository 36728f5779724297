"""The fake GitHub's Actions operations: a workflow, its runs (filtered), and workflow_dispatch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes import github_shapes as shapes
from tests.fakes.github_routes import REPO, Reply, _invalid, _not_found, _wrong_repo, route

if TYPE_CHECKING:
    from tests.fakes.github_api import FakeGitHub

WORKFLOW = REPO + "/actions/workflows/{workflow_id}"


def _workflow(gh: FakeGitHub, match: dict[str, str]) -> shapes.FakeWorkflow | None:
    """By numeric id or by file name (`watch-npm.yml`), as GitHub accepts both."""
    if _wrong_repo(gh, match):
        return None
    key = match["workflow_id"]
    for wf in gh.workflows.values():
        if str(wf.wid) == key or wf.path.rsplit("/", 1)[-1] == key:
            return wf
    return None


@route("GET", WORKFLOW)
def get_workflow(gh: FakeGitHub, match: dict[str, str], _q: dict[str, str], _p: Any) -> Reply:
    """GET one workflow."""
    wf = _workflow(gh, match)
    return (200, shapes.workflow(gh.urls, wf)) if wf else _not_found()


@route("GET", WORKFLOW + "/runs")
def list_runs(gh: FakeGitHub, match: dict[str, str], query: dict[str, str], _p: Any) -> Reply:
    """A workflow's runs, newest first, filtered by status (or conclusion), event and branch."""
    wf = _workflow(gh, match)
    if wf is None:
        return _not_found()
    status = query.get("status")
    runs = [
        r
        for r in gh.runs
        if r.workflow is wf
        and status in (None, r.status, r.conclusion)
        and query.get("event") in (None, r.event)
        and query.get("branch") in (None, r.head_branch)
    ]
    runs.sort(key=lambda r: (r.created_at, r.rid), reverse=True)
    page, per_page = int(query.get("page", "1")), int(query.get("per_page", "30"))
    shown = runs[(page - 1) * per_page : page * per_page]
    repo = shapes.repository(gh.urls, gh.default_branch)
    return 200, {
        "total_count": len(runs),
        "workflow_runs": [shapes.workflow_run(gh.urls, r, repo) for r in shown],
    }


@route("POST", WORKFLOW + "/dispatches")
def dispatch(gh: FakeGitHub, match: dict[str, str], _q: dict[str, str], payload: Any) -> Reply:
    """workflow_dispatch: queues a run on `ref` (204, as GitHub answers without run details)."""
    wf = _workflow(gh, match)
    if wf is None:
        return _not_found()
    ref = str((payload or {}).get("ref") or "")
    if gh.origin.branch_sha(ref) is None:
        return _invalid(f"No ref found for: {ref}", resource="Workflow")
    if wf.state != "active":
        return _invalid("Workflow does not have 'workflow_dispatch' trigger", resource="Workflow")
    gh.dispatches.append((wf.path, ref, dict((payload or {}).get("inputs") or {})))
    gh.add_run(wf.path, status="queued", conclusion=None, event="workflow_dispatch", branch=ref)
    return 204, None
