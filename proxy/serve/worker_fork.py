"""Workers started by fork from a supervisor that has imported the gateway (a preloaded start).

A worker forked after the imports shares the supervisor's modules, code objects and start-up
heap (frozen out of the collector's reach with `gc.freeze`) until it writes to them, instead of
importing everything again into an interpreter of its own: less memory per worker and a start
in a fraction of the time. It is sound only while the supervisor has one thread and no event
loop, which `can_fork` checks before each start; otherwise the supervisor starts a new
interpreter as before.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable

# What a forked worker's signals start as: SIGTERM and SIGCHLD as for any program, SIGHUP and
# SIGINT ignored until its loop handles them (a reload asked of a starting worker is not its
# death; Ctrl-C reaches the whole process group and the supervisor turns it into one SIGTERM).
_CHILD_SIGNALS = {
    signal.SIGTERM: signal.SIG_DFL,
    signal.SIGCHLD: signal.SIG_DFL,
    signal.SIGHUP: signal.SIG_IGN,
    signal.SIGINT: signal.SIG_IGN,
}


def can_fork() -> bool:
    """True when a fork now is safe: the platform has it and this process runs one thread."""
    return hasattr(os, "fork") and threading.active_count() == 1


def preload() -> None:
    """Import the gateway's server stack and freeze the start-up heap, before the first fork."""
    import driftgate.proxy.server  # noqa: F401  (what every worker runs)

    gc.collect()
    gc.freeze()  # the collector of a worker never writes to these objects' pages


class ForkedWorker:
    """A forked worker process, watched as `subprocess.Popen` watches a child."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit status once the worker has exited (negative: the signal that ended it)."""
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = 255  # reaped elsewhere: gone, how is unknown
                return self.returncode
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Signal the worker, unless it has been reaped (its pid may be another's by now)."""
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL."""
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the worker to exit; TimeoutError after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"worker {self.pid} still running after {timeout}s")
            time.sleep(0.01)
        return code


def fork_worker(run: Callable[[], int], close: Iterable[int]) -> ForkedWorker:
    """Fork; the child closes the supervisor's descriptors `close`, resets its signals, runs `run`
    and exits with its status (1 and the traceback on an exception), never returning here."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()  # else the child would write the supervisor's buffered text again
    pid = os.fork()
    if pid:
        return ForkedWorker(pid)
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for sig, handler in _CHILD_SIGNALS.items():
            signal.signal(sig, handler)
        for fd in close:
            with contextlib.suppress(OSError):
                os.close(fd)
        code = run()
    except SystemExit as exc:  # the status the interpreter would give: None is 0, text is 1
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
