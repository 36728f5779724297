"""The daemon's SQLite run history: migrations, runs, heartbeats, abandoned runs."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from driftgate.watchers.daemon.store import MIGRATIONS, RunStore
from driftgate.watchers.errors import StateError


def test_a_run_and_its_heartbeat(tmp_path: Path) -> None:
    moment = [datetime(2026, 11, 30, 12, 0, tzinfo=UTC)]
    store = RunStore(tmp_path / "d.sqlite3", clock=lambda: moment[0])
    first = store.start_run("npm")
    moment[0] += timedelta(seconds=5)
    store.finish_run(first, "ok", 0)
    assert store.last_success("npm") == moment[0]
    second = store.start_run("npm")
    store.finish_run(second, "failed", 3, "registry down")
    assert store.last_success("npm") == moment[0]  # a failure is no heartbeat
    last = store.last_run("npm")
    assert last is not None and (last.status, last.exit_code, last.detail) == (
        "failed",
        3,
        "registry down",
    )
    store.record_event("npm", "skipped", "still running")
    assert store.last_run("npm") == last  # firings that did not run are not "the last run"
    assert [r.status for r in store.runs("npm")] == ["skipped", "failed", "ok"]
    assert store.last_success("canary") is None and store.last_run("canary") is None


def test_running_rows_are_abandoned_consistently(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "d.sqlite3")
    store.start_run("npm")
    store.start_run("canary")
    # A new RunStore on the same file (the next daemon) sees them and marks them.
    again = RunStore(tmp_path / "d.sqlite3")
    assert again.abandon_running("found at start-up") == 2
    assert {r.status for r in again.runs()} == {"abandoned"}
    assert again.abandon_running("nothing left") == 0


def test_schema_is_versioned_and_a_newer_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite3"
    RunStore(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StateError, match="newer driftgate"):
        RunStore(path)
    (tmp_path / "dir.sqlite3").mkdir()
    with pytest.raises(StateError, match="cannot open"):
        RunStore(tmp_path / "dir.sqlite3")
