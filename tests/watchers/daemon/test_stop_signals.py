"""SIGTERM while the daemon's main thread waits: the handler only notes it, the wait returns."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from driftgate.watchers.daemon.stop_signals import StopSignals

ROOT = Path(__file__).resolve().parents[3]


def test_sigterm_during_the_wait_ends_it() -> None:
    with StopSignals() as signals:
        sender = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM))
        sender.start()
        started = time.monotonic()
        assert signals.wait(timeout=60) == signal.SIGTERM
        assert time.monotonic() - started < 30  # woken by the signal, not by the bound
        sender.join()


def test_a_signal_taken_by_another_thread_wakes_the_main_thread() -> None:
    # The kernel may hand a process signal to any thread; the C-level wakeup fd still wakes the
    # main thread's select (without it, the wait would sleep out its whole bound).
    with StopSignals() as signals:
        sender = threading.Thread(
            target=lambda: signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        )
        started = time.monotonic()
        sender.start()
        assert signals.wait(timeout=60) == signal.SIGINT
        assert time.monotonic() - started < 30
        sender.join()


def test_no_signal_means_the_bound() -> None:
    with StopSignals() as signals:
        assert signals.wait(timeout=0.05) is None


def test_previous_handlers_are_restored() -> None:
    def mine(_signum: int, _frame: object) -> None:
        return None

    old = signal.signal(signal.SIGTERM, mine)
    try:
        with StopSignals():
            assert signal.getsignal(signal.SIGTERM) is not mine
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, old)


def test_an_idle_daemon_stops_on_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        "[daemon]\njitter_seconds = 0\n[daemon.jobs.canary]\ninterval_seconds = 3600\n"
        "[daemon.jobs.npm]\nenabled = false\n[daemon.jobs.liveness]\nenabled = false\n"
        "[daemon.jobs.shapes]\nenabled = false\n"
    )
    env = {**os.environ, "DRIFTGATE_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "driftgate.proxy.cli", "--config", str(config), "daemon"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        lines: list[str] = []
        for line in proc.stderr:  # the main thread is in its wait once this is logged
            lines.append(line)
            if "job(s) scheduled" in line:
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, "".join(lines) + err
    assert "SIGTERM received: stopping" in err and "driftgate daemon: stopped" in err
