"""The daemon's scheduling with short intervals and an in-process runner: no overlapping runs,
misfires coalesced, a failing run never stops the daemon, history and heartbeats in SQLite."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from driftgate.watchers.daemon.jobs import DaemonSettings, JobConfig
from driftgate.watchers.daemon.runner import RunOutcome
from driftgate.watchers.daemon.scheduler import Daemon
from driftgate.watchers.daemon.store import RunStore


def eventually(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait for a condition the scheduler's threads make true (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


class GatedRunner:
    """Runs block until released; records how many ran at once."""

    def __init__(self, outcome: Callable[[int], RunOutcome] | None = None) -> None:
        self.release = threading.Event()
        self.active = 0
        self.most_at_once = 0
        self.calls = 0
        self.lock = threading.Lock()
        self.outcome = outcome or (lambda _n: RunOutcome("ok", 0))

    def run(self, job: JobConfig) -> RunOutcome:
        with self.lock:
            self.calls += 1
            self.active += 1
            self.most_at_once = max(self.most_at_once, self.active)
            number = self.calls
        try:
            self.release.wait(30)
            return self.outcome(number)
        finally:
            with self.lock:
                self.active -= 1

    def stop(self, grace: float) -> None:
        self.release.set()


def job(name: str = "npm", seconds: float = 0.1) -> JobConfig:
    return JobConfig(name, ("watch", name, "--once"), None, seconds, 0, True)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "daemon.sqlite3")


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    made: list[Daemon] = []
    yield made
    for d in made:
        if not d.stopped.is_set():
            d.stop()


def test_no_overlapping_runs_a_firing_during_a_run_is_skipped_and_recorded(
    store: RunStore, daemons: list[Daemon]
) -> None:
    runner = GatedRunner()
    daemon = Daemon(DaemonSettings((job(),), 60, 1.0), runner, store)
    daemons.append(daemon)
    daemon.start(first_run_now=True)
    eventually(lambda: any(r.status == "skipped" for r in store.runs("npm")))
    assert runner.most_at_once == 1 and runner.calls == 1
    runner.release.set()
    eventually(lambda: store.last_success("npm") is not None)
    daemon.stop()
    assert runner.most_at_once == 1
    assert not [r for r in store.runs() if r.status == "running"]


def test_missed_firings_are_coalesced_into_one_run(store: RunStore, daemons: list[Daemon]) -> None:
    runner = GatedRunner()
    runner.release.set()
    settings = DaemonSettings((), misfire_grace_seconds=24 * 3600, stop_grace_seconds=1.0)
    daemon = Daemon(settings, runner, store)
    daemons.append(daemon)
    daemon.start()
    # An hourly job whose last five firings passed while the machine slept.
    now = datetime.now(UTC)
    hourly = JobConfig("npm", ("watch", "npm", "--once"), None, 3600, 0, True)
    added = daemon.scheduler.add_job(
        daemon.fire,
        IntervalTrigger(hours=1, start_date=now - timedelta(hours=5, minutes=1)),
        args=[hourly],
        id="npm",
        next_run_time=now - timedelta(hours=5, minutes=1),
    )
    eventually(lambda: store.last_success("npm") is not None)
    eventually(lambda: added.next_run_time is not None and added.next_run_time > now)
    daemon.stop()
    assert runner.calls == 1
    assert [r.status for r in store.runs("npm")] == ["ok"]


def test_a_failing_run_is_recorded_with_its_traceback_and_the_daemon_goes_on(
    store: RunStore, daemons: list[Daemon], caplog: pytest.LogCaptureFixture
) -> None:
    def outcome(number: int) -> RunOutcome:
        if number == 1:
            raise RuntimeError("watcher exploded")
        return RunOutcome("failed", 3, "registry down") if number == 2 else RunOutcome("ok", 0)

    runner = GatedRunner(outcome)
    runner.release.set()
    daemon = Daemon(DaemonSettings((job(seconds=0.05),), 60, 1.0), runner, store)
    daemons.append(daemon)
    with caplog.at_level("INFO", logger="driftgate.daemon"):
        daemon.start(first_run_now=True)
        eventually(lambda: store.last_success("npm") is not None)
        daemon.stop()
    finished = [r for r in reversed(store.runs("npm", limit=100)) if r.status != "skipped"]
    assert [r.status for r in finished[:3]] == ["failed", "failed", "ok"]
    assert "RuntimeError: watcher exploded" in (finished[0].detail or "")
    assert finished[1].exit_code == 3
    assert "Traceback" in caplog.text and "watcher exploded" in caplog.text


def test_a_disabled_job_is_not_scheduled(store: RunStore, daemons: list[Daemon]) -> None:
    off = JobConfig("npm", ("watch", "npm"), None, 0.05, 0, False)
    daemon = Daemon(DaemonSettings((off,), 60, 1.0), GatedRunner(), store)
    daemons.append(daemon)
    daemon.start(first_run_now=True)
    assert daemon.scheduler.get_jobs() == []
