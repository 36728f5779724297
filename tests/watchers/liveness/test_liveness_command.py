"""`driftgate watch liveness` against the fake GitHub API (workflow runs, dispatches, issues) and
the daemon's real SQLite heartbeat store."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from driftgate.proxy.errors import ConfigError
from driftgate.watchers.daemon.store import RunStore, store_path
from driftgate.watchers.liveness.command import LivenessFlags, run_watch_liveness
from tests.fakes.github_api import FakeGitHub

NPM = ".github/workflows/watch-npm.yml"
CANARY = ".github/workflows/watch-canary.yml"


def liveness(
    tmp_path: Path,
    gh: FakeGitHub | None = None,
    config: str = "",
    later: timedelta = timedelta(0),
    **flags: Any,
) -> tuple[int, str, str]:
    path = tmp_path / "config.toml"
    path.write_text(config)
    if gh is not None:
        flags.setdefault("repo", gh.full_name)
        flags.setdefault("github_api_url", gh.url)
    out, err = io.StringIO(), io.StringIO()
    env = {"DRIFTGATE_HOME": str(tmp_path / "home"), "GITHUB_TOKEN": "ghs_test"}
    status = run_watch_liveness(
        LivenessFlags(**flags),
        config_path=path,
        env=env,
        out=out,
        err=err,
        min_write_interval=0,
        clock=lambda: datetime.now(UTC) + later,
    )
    return status, out.getvalue(), err.getvalue()


def test_stale_workflow_is_redispatched_once_then_alerted_then_closed_on_recovery(
    tmp_path: Path, github_api: FakeGitHub
) -> None:
    github_api.add_run(NPM, ago=timedelta(minutes=50))
    github_api.add_run(CANARY, ago=timedelta(hours=40))
    github_api.add_run(CANARY, conclusion="failure", ago=timedelta(hours=16))

    status, out, _ = liveness(tmp_path, github_api)
    assert status == 0, out
    assert github_api.dispatches == [(CANARY, "main", {})]
    assert github_api.issues == {}
    assert "canary     redispatch" in out and "npm        fresh" in out

    # The re-dispatched run failed too: now it is an alert, and no second dispatch.
    github_api.runs[-1].status, github_api.runs[-1].conclusion = "completed", "failure"
    status, out, _ = liveness(tmp_path, github_api)
    assert status == 1
    assert len(github_api.dispatches) == 1
    [issue] = github_api.open_issues("drift:liveness")
    assert "canary" in issue.title and "threshold 36.0 h" in issue.title
    assert "re-dispatched at" in (issue.body or "")

    # Two hours later, still silent: the same issue, no comment spam.
    status, _, _ = liveness(tmp_path, github_api)
    assert status == 1 and len(github_api.issues) == 1 and issue.comments == []

    github_api.add_run(CANARY, event="workflow_dispatch")
    status, out, _ = liveness(tmp_path, github_api)
    assert status == 0, out
    assert issue.state == "closed" and issue.comments[-1]["body"].startswith("Recovered")


def test_a_workflow_not_in_the_repository_is_reported_not_alerted(
    tmp_path: Path, github_api: FakeGitHub
) -> None:
    github_api.add_run(NPM, ago=timedelta(minutes=5))
    status, out, _ = liveness(tmp_path, github_api, as_json=True)
    assert status == 0
    verdicts = {w["watcher"]: w["action"] for w in json.loads(out)["watchers"]}
    assert verdicts == {"npm": "fresh", "canary": "not-set-up", "shapes": "not-set-up"}
    assert github_api.writes() == []


def test_a_read_error_changes_nothing(tmp_path: Path, github_api: FakeGitHub) -> None:
    github_api.add_run(NPM, ago=timedelta(hours=10))
    github_api.add_run(CANARY, ago=timedelta(hours=1))
    github_api.fail_next(
        403, path="watch-canary.yml", message="Resource not accessible by integration"
    )
    status, out, _ = liveness(tmp_path, github_api)
    assert status == 1 and "nothing was changed on GitHub" in out
    assert github_api.writes() == [] and github_api.dispatches == []


def test_thresholds_come_from_config_and_flags(tmp_path: Path, github_api: FakeGitHub) -> None:
    github_api.add_run(NPM, ago=timedelta(hours=5))
    github_api.add_run(CANARY, ago=timedelta(hours=5))
    config = "[watch.liveness]\nmax_age_hours = {npm = 6, canary = 0, shapes = 0}\n"
    status, out, _ = liveness(tmp_path, github_api, config=config, as_json=True)
    assert status == 0
    assert [w["watcher"] for w in json.loads(out)["watchers"]] == ["npm"]
    status, out, _ = liveness(tmp_path, github_api, config=config, max_age=["npm=4"], dry_run=True)
    assert status == 0 and "npm        redispatch" in out
    assert github_api.dispatches == []  # --dry-run
    with pytest.raises(ConfigError, match="NAME=HOURS"):
        liveness(tmp_path, github_api, max_age=["npm"])
    with pytest.raises(ConfigError, match="no threshold"):
        liveness(tmp_path, github_api, watchers=["nosuch"])


def test_daemon_heartbeats_as_the_source(tmp_path: Path, github_api: FakeGitHub) -> None:
    now = [datetime.now(UTC) - timedelta(hours=5)]
    store = RunStore(store_path(tmp_path / "home"), clock=lambda: now[0])
    run_id = store.start_run("npm")
    store.finish_run(run_id, "ok", 0)
    run_id = store.start_run("canary")
    store.finish_run(run_id, "ok", 0)
    status, out, _ = liveness(tmp_path, None, source="daemon")
    assert status == 1 and "npm        alert" in out and "no --repo: no alert filed" in out
    status, _, _ = liveness(tmp_path, github_api, source="daemon")
    assert status == 1
    [issue] = github_api.open_issues("drift:liveness")
    assert "daemon" in (issue.body or "") and github_api.dispatches == []


def test_daemon_source_checks_only_the_jobs_the_daemon_runs_and_gives_new_ones_time(
    tmp_path: Path,
) -> None:
    store = RunStore(store_path(tmp_path / "home"))
    store.finish_run(store.start_run("canary"), "failed", 1)  # started now, never succeeded
    config = "[daemon.jobs.npm]\nenabled = false\n"
    status, out, _ = liveness(tmp_path, None, config=config, source="daemon", as_json=True)
    assert status == 0, out
    verdicts = {w["watcher"]: w["action"] for w in json.loads(out)["watchers"]}
    assert verdicts == {"npm": "not-set-up", "canary": "fresh", "shapes": "not-set-up"}
    # Past the threshold with no success since the daemon began running it: an alert.
    two_hours_on = timedelta(hours=2)
    status, out, _ = liveness(
        tmp_path, None, config=config, later=two_hours_on, source="daemon", max_age=["canary=1"]
    )
    assert status == 1 and "canary     alert       never succeeded" in out


def test_an_alert_for_a_watcher_no_longer_set_up_is_closed(
    tmp_path: Path, github_api: FakeGitHub
) -> None:
    github_api.add_run(NPM, ago=timedelta(hours=1))
    github_api.add_run(CANARY, ago=timedelta(hours=50))
    github_api.add_run(CANARY, event="workflow_dispatch", conclusion="failure")
    assert liveness(tmp_path, github_api)[0] == 1
    [issue] = github_api.open_issues("drift:liveness")
    del github_api.workflows[CANARY]  # the workflow was deleted from the repository
    status, out, _ = liveness(tmp_path, github_api)
    assert status == 0, out
    assert issue.state == "closed" and "not set up here any more" in issue.comments[-1]["body"]
