"""`driftgate proxy --workers N`: one supervisor process and N worker processes on one port.

Each worker is a whole gateway (`driftgate proxy` with its own event loop) that binds the port
with SO_REUSEPORT, so the kernel spreads connections over them. The supervisor holds the port
bound (not listening: it takes no connections) so that it stays ours while a worker restarts,
starts the workers, restarts one that dies (with a growing backoff; it gives up, exit 1, when
they keep dying), turns SIGTERM / Ctrl-C into a drain of every worker, and on SIGHUP checks the
new config before it asks the workers to reload it.

Each worker gets one end of a socket pair: it writes `ready <startup line>` there once it
listens, and it stops (draining) when the supervisor's end closes, so a supervisor killed with
SIGKILL leaves no worker behind.

Given a `worker_main`, a worker is forked from the supervisor, which has imported the gateway
(worker_fork.py); else, or when a fork would not be safe, it is a new interpreter running
`command`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import IO

from driftgate.proxy.config import Config
from driftgate.proxy.errors import ConfigError
from driftgate.proxy.observe.metrics_share import clear, metrics_dir
from driftgate.proxy.serve.reload import live_part, restart_only_changes
from driftgate.proxy.serve.worker_fork import ForkedWorker, can_fork, fork_worker

log = logging.getLogger("driftgate.supervisor")
# (worker index, the link's fd in the worker, the port) -> the worker's command line
WorkerCommand = Callable[[int, int, int], list[str]]
# (worker index, the worker's end of its link, the port) -> its exit status; run in a fork
WorkerMain = Callable[[int, socket.socket, int], int]


@dataclass(frozen=True)
class CrashPolicy:
    """When a dead worker is started again, and when the supervisor gives up."""

    first_backoff: float = 0.5  # seconds before the first restart; doubled at each quick death
    max_backoff: float = 10.0
    max_crashes: int = 5  # this many deaths within `window` seconds is a crash loop: give up
    window: float = 60.0
    healthy_after: float = 30.0  # a worker that ran this long starts its backoff afresh


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[bytes] | ForkedWorker | None = None
    link: socket.socket | None = None
    started: float = 0.0
    ready: bool = False
    backoff: float = 0.0
    restart_at: float | None = None
    buffer: bytes = b""


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to host:port with SO_REUSEPORT and not listening: the port stays ours."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigError(
            "--workers needs SO_REUSEPORT (Linux, macOS, BSD), which this system lacks; "
            "run one worker (--workers 1)"
        )
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, kind, proto, _, addr = infos[0]
        if port:
            # SO_REUSEPORT would also join a port another process holds with it (a gateway
            # already running with --workers): the kernel would split clients between the two.
            # A bind without it fails on a listening holder, as the one-process gateway's does.
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(addr)
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(addr)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


class Supervisor:
    """Start `count` workers, keep them running, stop or reload them on a signal."""

    def __init__(
        self,
        config: Config,
        count: int,
        command: WorkerCommand,
        load: Callable[[], Config],
        policy: CrashPolicy | None = None,
        out: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        worker_main: WorkerMain | None = None,
    ) -> None:
        self.config = config
        self.count = count
        self._command = command
        self._main = worker_main
        self._own_fds: list[int] = []  # the supervisor's descriptors a forked worker closes
        self._load = load
        self.policy = policy or CrashPolicy()
        self._out = out or sys.stdout
        self._clock = clock
        self._workers = [_Worker(i) for i in range(count)]
        self._signals: list[int] = []
        self._crashes: deque[float] = deque()
        self._stopping = 0  # how many stop signals arrived
        self._announced = False
        self._sel = selectors.DefaultSelector()
        self.port = 0

    @property
    def pids(self) -> list[int]:
        """The running workers' process ids."""
        return [w.proc.pid for w in self._workers if w.proc is not None]

    def run(self) -> int:
        """Supervise until stopped (0) or until the workers crash-loop (1)."""
        reserved = reserve_port(self.config.host, self.config.port)
        clear(metrics_dir(self.config.home))  # a previous run's totals are not this run's
        self.port = int(reserved.getsockname()[1])
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        self._sel.register(wake_r, selectors.EVENT_READ, None)
        self._own_fds = [reserved.fileno(), wake_r, wake_w, self._sel.fileno()]
        caught = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in caught}
        old_wakeup = signal.set_wakeup_fd(wake_w)
        try:
            for worker in self._workers:
                self._spawn(worker)
            return self._loop(wake_r)
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for worker in self._workers:
                self._close_link(worker)
            self._sel.close()
            os.close(wake_r)
            os.close(wake_w)
            reserved.close()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)

    def _loop(self, wake_r: int) -> int:
        while True:
            for key, _ in self._sel.select(self._timeout()):
                if key.data is None:
                    with contextlib.suppress(OSError, KeyError, ValueError):
                        while os.read(wake_r, 512):
                            pass
                else:
                    self._read_link(key.data)
            signals, self._signals = self._signals, []
            for signum in signals:
                if signum in (signal.SIGTERM, signal.SIGINT):
                    self._stop()
                elif signum == signal.SIGHUP and not self._stopping:
                    self._reload()
            if self._reap():
                self._give_up()
                return 1
            if self._stopping and not self.pids:
                print("driftgate: stopped", file=sys.stderr, flush=True)
                return 0
            self._restart_due()

    def _timeout(self) -> float | None:
        due = [w.restart_at for w in self._workers if w.restart_at is not None]
        if not due:
            return None
        return max(0.0, min(due) - self._clock())

    def _spawn(self, worker: _Worker) -> None:
        ours, theirs = socket.socketpair()
        try:
            main = self._main
            if main is not None and can_fork():
                # Every other worker's link too: a worker holding one would keep that worker
                # from seeing the supervisor go.
                links = [w.link.fileno() for w in self._workers if w.link is not None]
                index, port = worker.index, self.port
                worker.proc = fork_worker(
                    lambda: main(index, theirs, port), [*self._own_fds, *links, ours.fileno()]
                )
            else:
                worker.proc = subprocess.Popen(
                    self._command(worker.index, theirs.fileno(), self.port),
                    pass_fds=(theirs.fileno(),),
                )
        finally:
            theirs.close()
        ours.setblocking(False)
        worker.link = ours
        worker.started = self._clock()
        worker.ready = False
        worker.restart_at = None
        worker.buffer = b""
        self._sel.register(ours, selectors.EVENT_READ, worker)

    def _read_link(self, worker: _Worker) -> None:
        assert worker.link is not None
        try:
            data = worker.link.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close_link(worker)  # the worker is exiting; `_reap` sees it go
            return
        worker.buffer += data
        while b"\n" in worker.buffer:
            line, worker.buffer = worker.buffer.split(b"\n", 1)
            if line.startswith(b"ready "):
                worker.ready = True
                if self._announced and worker.proc is not None:
                    log.info("worker %d (pid %d) is serving again", worker.index, worker.proc.pid)
                self._announce(line[len(b"ready ") :].decode(errors="replace"))

    def _announce(self, line: str) -> None:
        """Once every worker listens: the startup line, as one gateway prints it."""
        if self._announced or not all(w.ready for w in self._workers):
            return
        self._announced = True
        print(line, file=self._out, flush=True)

    def _close_link(self, worker: _Worker) -> None:
        if worker.link is not None:
            with contextlib.suppress(OSError, KeyError, ValueError):
                self._sel.unregister(worker.link)
            worker.link.close()
            worker.link = None

    def _reap(self) -> bool:
        """Notice workers that exited; schedule their restart. True on a crash loop."""
        now = self._clock()
        for worker in self._workers:
            code = None if worker.proc is None else worker.proc.poll()
            if worker.proc is None or code is None:
                continue
            pid = worker.proc.pid
            worker.proc = None
            self._close_link(worker)
            if self._stopping:
                continue
            self._crashes.append(now)
            while self._crashes and self._crashes[0] < now - self.policy.window:
                self._crashes.popleft()
            if len(self._crashes) >= self.policy.max_crashes:
                return True
            ran = now - worker.started
            if ran >= self.policy.healthy_after or worker.backoff == 0.0:
                worker.backoff = self.policy.first_backoff
            else:
                worker.backoff = min(worker.backoff * 2, self.policy.max_backoff)
            worker.restart_at = now + worker.backoff
            log.error(
                "worker %d (pid %d) %s after %.1fs; starting a new one in %gs",
                worker.index,
                pid,
                _how_it_ended(code),
                ran,
                worker.backoff,
            )
        return False

    def _restart_due(self) -> None:
        now = self._clock()
        for worker in self._workers:
            if worker.restart_at is not None and worker.restart_at <= now and not self._stopping:
                self._spawn(worker)

    def _stop(self) -> None:
        """SIGTERM / Ctrl-C: every worker drains (a second one: they cut what is left now)."""
        self._stopping += 1
        if self._stopping == 1:
            log.info(
                "stopping: %d worker(s) drain their requests, grace %gs (signal again to cut them now)",
                len(self.pids),
                self.config.shutdown_grace,
            )
        for worker in self._workers:
            worker.restart_at = None
            if worker.proc is not None:
                with contextlib.suppress(OSError, KeyError, ValueError):
                    worker.proc.send_signal(signal.SIGTERM)

    def _reload(self) -> None:
        """SIGHUP: check the new config here, then let every worker apply it."""
        try:
            new = self._load()
        except ConfigError as exc:
            log.error("reload refused, the running config stays in force: %s", exc)
            return
        for note in restart_only_changes(self.config, new):
            log.warning("reload: %s", note)
        asked = 0
        for worker in self._workers:
            # A worker still starting reads the file itself (and has no SIGHUP handler yet).
            if worker.proc is not None and worker.ready:
                with contextlib.suppress(OSError, KeyError, ValueError):
                    worker.proc.send_signal(signal.SIGHUP)
                    asked += 1
        self.config = live_part(self.config, new)  # what the workers run now
        log.info("reload: asked %d worker(s) to apply %s", asked, new.path)

    def _give_up(self) -> None:
        log.critical(
            "giving up: workers died %d times within %gs (a crash loop); the lines above say "
            "why they died. Fix that and start driftgate again.",
            len(self._crashes),
            self.policy.window,
        )
        for worker in self._workers:
            worker.restart_at = None
            if worker.proc is not None:
                with contextlib.suppress(OSError, KeyError, ValueError):
                    worker.proc.send_signal(signal.SIGTERM)
        for worker in self._workers:
            if worker.proc is not None:
                try:
                    worker.proc.wait(self.config.shutdown_grace + 10)
                except (subprocess.TimeoutExpired, TimeoutError):
                    worker.proc.kill()
                    worker.proc.wait()


def _how_it_ended(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with status {code}"
