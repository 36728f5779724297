"""Start, watch and always stop the benchmark's processes (each in its own session)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType


class BenchError(Exception):
    """Something the benchmark needs did not work; the message says what."""


@dataclass(frozen=True)
class Started:
    """A process the group started: its name, Popen handle and log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        """The process id (taskset execs, so this is the pinned program itself)."""
        return self.popen.pid

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the process's log, for an error message."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(argv: Sequence[str], cpu: int | str | None) -> list[str]:
    """`argv` under `taskset -c cpu` when a CPU (or a list, "0,1") is given and taskset exists."""
    if cpu is None or shutil.which("taskset") is None:
        return list(argv)
    return ["taskset", "-c", str(cpu), *argv]


class ProcessGroup:
    """Every process started through it is stopped on exit, even on Ctrl-C or an error."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Started] = []

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Started:
        """Start `argv` in a new session with output to `<log_dir>/<name>.log`."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as fh:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        started = Started(name, popen, log)
        self.started.append(started)
        return started

    def stop(self, proc: Started, grace: float = 5.0) -> None:
        """SIGTERM the process's session, then SIGKILL it after `grace` seconds."""
        if proc.popen.poll() is None:
            _signal_session(proc.popen.pid, signal.SIGTERM)
            try:
                proc.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_session(proc.popen.pid, signal.SIGKILL)
                proc.popen.wait(timeout=grace)
        # Children that outlived their leader (uvicorn workers, say) go too.
        _signal_session(proc.popen.pid, signal.SIGKILL)
        if proc in self.started:
            self.started.remove(proc)

    def stop_all(self) -> None:
        """Stop everything still running, newest first."""
        for proc in reversed(list(self.started)):
            self.stop(proc)


def _signal_session(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait_http(proc: Started, url: str, timeout: float) -> None:
    """Wait until `url` answers any HTTP status; raise with the log tail if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise BenchError(
                f"{proc.name} exited with status {proc.popen.returncode}:\n{proc.log_tail()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered: listening
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise BenchError(f"{proc.name} did not answer {url} within {timeout:.0f}s:\n{proc.log_tail()}")


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    try:
        for task in task_dir.iterdir():
            raw = (task / "children").read_text().split()
            kids.extend(int(k) for k in raw)
    except OSError:
        pass
    return kids


def _tree_files(pid: int, name: str) -> list[str] | None:
    """`/proc/<p>/<name>` of `pid` and its descendants (None when `pid` itself is gone)."""
    texts: list[str] = []
    stack, seen = [pid], set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            texts.append(Path(f"/proc/{current}/{name}").read_text())
        except OSError:
            if current == pid:
                return None
            continue
        stack.extend(_children(current))
    return texts


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of `pid` (all its threads) and its descendants, in seconds."""
    stats = _tree_files(pid, "stat")
    if stats is None:
        return None
    total = 0
    for stat in stats:
        fields = stat.rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float | None:
    """VmRSS of `pid` and its descendants in MB of 10**6 bytes (None when it is gone)."""
    statuses = _tree_files(pid, "status")
    if statuses is None:
        return None
    total_kb = 0
    for status in statuses:
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return total_kb * 1024 / 1e6  # VmRSS counts KiB
