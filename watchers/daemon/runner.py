"""Run one watcher as a child process (`driftgate watch NAME --once`), exactly as a workflow does,
so a crashing or hanging watcher never takes the daemon down; stop children on shutdown."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from driftgate.watchers.daemon.jobs import JobConfig

log = logging.getLogger("driftgate.daemon")
OUTPUT_TAIL = 4000
KILL_AFTER_SECONDS = 10.0


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended: `ok`, `failed`, or `abandoned` (stopped by the daemon's shutdown)."""

    status: str
    exit_code: int | None
    detail: str | None = None


class Runner(Protocol):
    """What the scheduler needs to run a job (tests pass in-process runners)."""

    def run(self, job: JobConfig) -> RunOutcome:
        """Run one job to its end."""
        ...

    def stop(self, grace: float) -> None:
        """Let running jobs finish for `grace` seconds, then end them."""
        ...


class SubprocessRunner:
    """Each run is `python -m driftgate.proxy.cli [--config PATH] ARGV` with the daemon's environment."""

    def __init__(self, *, config_path: Path | None, env: Mapping[str, str]) -> None:
        self.config_path = config_path
        self.env = dict(env)
        self._children: dict[str, subprocess.Popen[str]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def command(self, argv: Sequence[str]) -> list[str]:
        """The child's command line."""
        base = [sys.executable, "-m", "driftgate.proxy.cli"]
        if self.config_path is not None:
            base += ["--config", str(self.config_path)]
        return base + list(argv)

    def run(self, job: JobConfig) -> RunOutcome:
        """Start the child, pass its output to the log, wait for it."""
        if self._stopping.is_set():
            return RunOutcome("abandoned", None, "the daemon was stopping")
        name = job.name
        env = dict(self.env)
        if job.ping_url:
            env["DRIFTGATE_PING_URL"] = job.ping_url
        child = subprocess.Popen(
            self.command(job.argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        with self._lock:
            self._children[name] = child
        tail: list[str] = []
        try:
            assert child.stdout is not None
            for line in child.stdout:
                log.info("[%s] %s", name, line.rstrip())
                tail.append(line)
                while sum(map(len, tail)) > OUTPUT_TAIL:
                    tail.pop(0)
            code = child.wait()
        finally:
            with self._lock:
                self._children.pop(name, None)
        output = "".join(tail) or None
        if self._stopping.is_set() and code != 0:
            return RunOutcome(
                "abandoned", code, "stopped by the daemon's shutdown\n" + (output or "")
            )
        return RunOutcome("ok" if code == 0 else "failed", code, output if code else None)

    def running(self) -> list[str]:
        """Names of the jobs whose child is alive."""
        with self._lock:
            return [n for n, c in self._children.items() if c.poll() is None]

    def stop(self, grace: float) -> None:
        """No new children; wait `grace` s for running ones; then SIGTERM, then SIGKILL."""
        self._stopping.set()
        deadline = time.monotonic() + grace
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        with self._lock:
            children = [(n, c) for n, c in self._children.items() if c.poll() is None]
        for name, child in children:
            log.warning("job %s still running after %gs: sending SIGTERM", name, grace)
            child.terminate()
        for name, child in children:
            try:
                child.wait(timeout=KILL_AFTER_SECONDS)
            except subprocess.TimeoutExpired:
                log.warning("job %s ignored SIGTERM: killing it", name)
                child.kill()
                child.wait()
