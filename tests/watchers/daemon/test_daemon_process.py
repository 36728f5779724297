"""`driftgate daemon` as a real process: it runs jobs, lists them, and a SIGTERM in the middle of a
run leaves consistent state (the run abandoned, nothing left `running`, the child pinged /fail)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.behaviour import Behaviour
from tests.fakes.ping_server import PingServer

ROOT = Path(__file__).resolve().parents[3]


def eventually(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def rows(db: Path, where: str = "1") -> list[tuple[str, str, int | None]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute(
                f"SELECT job, status, exit_code FROM runs WHERE {where} ORDER BY id"
            ).fetchall()
        except sqlite3.OperationalError:
            return []


def driftgate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftgate.proxy.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_sigterm_mid_run_abandons_the_run_consistently(
    tmp_path: Path, ping_server: PingServer
) -> None:
    # The canary's upstream accepts the connection and never answers: a run that hangs.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    config = tmp_path / "config.toml"
    config.write_text(
        '[backends.a]\nkind = "anthropic"\n'
        f'base_url = "http://127.0.0.1:{listener.getsockname()[1]}"\nkey = "sk-ant-x"\n\n'
        "[daemon]\nstop_grace_seconds = 0.5\njitter_seconds = 0\n\n"
        "[daemon.jobs.canary]\ninterval_seconds = 3600\n"
        "[daemon.jobs.npm]\nenabled = false\n"
        "[daemon.jobs.liveness]\nenabled = false\n[daemon.jobs.shapes]\nenabled = false\n"
    )
    home = tmp_path / "home"
    env = {**os.environ, "DRIFTGATE_HOME": str(home), "DRIFTGATE_PING_URL": ping_server.url}
    db = home / "daemon.sqlite3"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "driftgate.proxy.cli",
            "--config",
            str(config),
            "daemon",
            "--run-now",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        eventually(lambda: rows(db, "status = 'running'") == [("canary", "running", None)])
        conn, _ = listener.accept()  # the canary's first probe is in flight
        listed = driftgate("--config", str(config), "daemon", "--list", env=env)
        assert listed.returncode == 0
        assert "canary" in listed.stdout and "running" in listed.stdout
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        conn.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        listener.close()
    assert rows(db) == [("canary", "abandoned", 143)]
    assert "SIGTERM received: stopping" in err and "driftgate daemon: stopped" in err
    assert [p.suffix for p in ping_server.wait_for(2)] == ["/start", "/fail"]
    listed = driftgate("--config", str(config), "daemon", "--list", env=env)
    assert "abandoned (exit 143)" in listed.stdout
    assert "never" in listed.stdout  # no success yet


def test_the_daemon_runs_a_real_job_and_records_its_heartbeat(tmp_path: Path) -> None:
    # `watch canary` with no key exits 3: a real failing run, recorded, and the daemon goes on.
    config = tmp_path / "config.toml"
    config.write_text(
        "[daemon]\njitter_seconds = 0\n[daemon.jobs.canary]\ninterval_seconds = 1\n"
        "[daemon.jobs.npm]\nenabled = false\n[daemon.jobs.liveness]\nenabled = false\n[daemon.jobs.shapes]\nenabled = false\n"
    )
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["DRIFTGATE_HOME"] = str(home)
    db = home / "daemon.sqlite3"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "driftgate.proxy.cli",
            "--config",
            str(config),
            "daemon",
            "--run-now",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        eventually(lambda: len(rows(db, "status = 'failed'")) >= 2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    ended = {r for r in rows(db) if r[1] != "skipped"}
    assert ("canary", "failed", 3) in ended
    # A run in flight at SIGTERM is abandoned: it ends on its own (3), by the signal (143), or
    # is not started at all (None) when it fires as the daemon stops.
    assert ended - {("canary", "failed", 3)} <= {
        ("canary", "abandoned", 3),
        ("canary", "abandoned", 143),
        ("canary", "abandoned", None),
    }
    assert "no API key" in err  # the child's output is in the daemon's log


def test_sigterm_lets_a_run_that_ends_within_the_grace_finish(tmp_path: Path) -> None:
    fake = FakeAnthropic(models=("claude-haiku-4-5",), api_key="sk-ant-grace-test").start()
    fake.script(Behaviour.stall(3.0))  # the first probe takes 3 s
    config = tmp_path / "config.toml"
    config.write_text(
        f'[backends.a]\nkind = "anthropic"\nbase_url = "{fake.url}"\nkey = "sk-ant-grace-test"\n'
        'models = ["claude-haiku-4-5"]\n\n'
        "[daemon]\nstop_grace_seconds = 60\njitter_seconds = 0\n\n"
        '[daemon.jobs.canary]\ninterval_seconds = 3600\nargs = ["--max-probes", "1"]\n'
        "[daemon.jobs.npm]\nenabled = false\n"
        "[daemon.jobs.liveness]\nenabled = false\n[daemon.jobs.shapes]\nenabled = false\n"
    )
    home = tmp_path / "home"
    env = {**os.environ, "DRIFTGATE_HOME": str(home)}
    env.pop("DRIFTGATE_PING_URL", None)
    db = home / "daemon.sqlite3"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "driftgate.proxy.cli",
            "--config",
            str(config),
            "daemon",
            "--run-now",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        eventually(lambda: len(fake.requests) == 1)  # the stalled probe is in flight
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        fake.stop()
    assert proc.returncode == 0, err
    assert rows(db) == [("canary", "ok", 0)]
    assert "job canary finished: ok" in err
