"""GitHub Actions as a liveness source: a workflow's last successful run, pending dispatches, a dispatch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice

import github
from github.Repository import Repository

# Enough history to find the last success of an hourly job that failed for a day and more.
RUNS_SCANNED = 50


@dataclass(frozen=True)
class WorkflowHistory:
    """What liveness needs to know about one workflow."""

    workflow: str  # the file name, watch-npm.yml
    last_success: datetime | None
    # A workflow_dispatch run newer than the last success: a re-dispatch was already tried.
    redispatched_at: datetime | None
    redispatch_pending: bool  # that run is still queued or in progress


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def history(repo: Repository, workflow: str) -> WorkflowHistory | None:
    """Read the workflow's recent runs (a few API calls); None when the repository lacks it."""
    try:
        wf = repo.get_workflow(workflow)
    except github.UnknownObjectException:
        return None
    success = next(iter(wf.get_runs(status="success")), None)
    last = _aware(success.created_at) if success is not None else None
    redispatched: datetime | None = None
    pending = False
    for run in islice(wf.get_runs(event="workflow_dispatch"), RUNS_SCANNED):
        created = _aware(run.created_at)
        if last is not None and created <= last:
            break
        redispatched = created if redispatched is None else max(redispatched, created)
        pending = pending or run.status in (
            "queued",
            "in_progress",
            "waiting",
            "requested",
            "pending",
        )
    return WorkflowHistory(workflow, last, redispatched, pending)


def dispatch(repo: Repository, workflow: str) -> None:
    """Start the workflow on the default branch (`workflow_dispatch`)."""
    repo.get_workflow(workflow).create_dispatch(ref=repo.default_branch, throw=True)
