"""The supervisor's restart policy, with workers that are small real processes."""

from __future__ import annotations

import io
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from driftgate.proxy.config import Config, load_config
from driftgate.proxy.errors import ConfigError
from driftgate.proxy.serve.supervisor import CrashPolicy, Supervisor, reserve_port

QUICK = CrashPolicy(first_backoff=0.01, max_backoff=0.05, max_crashes=4, window=60.0)


def config(tmp_path: Path) -> Config:
    return load_config({"DRIFTGATE_HOME": str(tmp_path)}).with_overrides(port=0, workers=2)


def test_workers_that_keep_dying_make_the_supervisor_give_up_loudly_with_status_1(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def command(index: int, fd: int, port: int) -> list[str]:
        return [sys.executable, "-c", "import sys; sys.exit(3)"]

    cfg = config(tmp_path)
    out = io.StringIO()
    before = signal.getsignal(signal.SIGHUP)  # SIG_IGN when the suite itself runs under nohup
    with caplog.at_level(logging.INFO, "driftgate.supervisor"):
        code = Supervisor(cfg, 2, command, lambda: cfg, QUICK, out=out).run()
    assert code == 1
    assert caplog.text.count("exited with status 3") == QUICK.max_crashes - 1
    assert "giving up: workers died 4 times within 60s (a crash loop)" in caplog.text
    assert out.getvalue() == ""  # it never said it was listening
    assert signal.getsignal(signal.SIGHUP) is before  # its handlers are gone again


def test_a_worker_that_dies_once_is_started_again_and_stop_ends_them_all_with_0(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Worker 0 dies at once the first time (a marker file says it ran); then every worker says
    # it is ready, and worker 0 sends its supervisor SIGTERM, as a user would.
    marker = tmp_path / "died-once"
    script = (
        "import os, pathlib, signal, socket, sys, time\n"
        "index, fd = int(sys.argv[1]), int(sys.argv[2])\n"
        "marker = pathlib.Path(sys.argv[3])\n"
        "if index == 0 and not marker.exists():\n"
        "    marker.write_text('x'); sys.exit(5)\n"
        "link = socket.socket(fileno=fd)\n"
        "link.sendall(b'ready driftgate listening on http://x (2 workers)\\n')\n"
        "if index == 0: os.kill(os.getppid(), signal.SIGTERM)\n"
        "signal.sigwait({signal.SIGTERM})\n"
    )

    def command(index: int, fd: int, port: int) -> list[str]:
        return [sys.executable, "-c", script, str(index), str(fd), str(marker)]

    cfg = config(tmp_path)
    out = io.StringIO()
    with caplog.at_level(logging.INFO, "driftgate.supervisor"):
        code = Supervisor(cfg, 2, command, lambda: cfg, QUICK, out=out).run()
    assert code == 0
    assert "worker 0" in caplog.text and "exited with status 5" in caplog.text
    assert out.getvalue() == "driftgate listening on http://x (2 workers)\n"


def test_a_port_held_by_another_program_is_a_config_error(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1:"):
            reserve_port("127.0.0.1", holder.getsockname()[1])
    finally:
        holder.close()


def test_a_port_another_gateway_holds_with_reuseport_is_a_config_error() -> None:
    # A second `driftgate proxy --workers 2` on the port of a running one started, and the kernel
    # split new connections between the two gateways (each with its own config).
    held = socket.socket()
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    held.bind(("127.0.0.1", 0))
    held.listen()  # a worker of the running gateway
    try:
        port = held.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"cannot listen on 127\.0\.0\.1:{port}"):
            reserve_port("127.0.0.1", port)
    finally:
        held.close()


def test_with_a_second_thread_running_workers_are_new_interpreters_not_forks(
    tmp_path: Path,
) -> None:
    # A fork copies only the forking thread: a lock another thread held stays held in the child.
    script = (
        "import signal, socket, sys\n"
        "link = socket.socket(fileno=int(sys.argv[1]))\n"
        "link.sendall(b'ready exec\\n')\n"
        "signal.sigwait({signal.SIGTERM})\n"
    )

    def command(index: int, fd: int, port: int) -> list[str]:
        return [sys.executable, "-c", script, str(fd), str(index)]

    def forked(index: int, link: socket.socket, port: int) -> int:
        link.sendall(b"ready forked\n")
        return 0

    cfg = config(tmp_path)
    out = io.StringIO()

    def stop_once_announced() -> None:
        # The second thread; it stops the supervisor once both workers are ready (a worker that
        # stopped it at once raced the other's start-up: nothing announced on a loaded machine).
        deadline = time.monotonic() + 60
        while not out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    other = threading.Thread(target=stop_once_announced, daemon=True)
    other.start()
    supervisor = Supervisor(cfg, 2, command, lambda: cfg, QUICK, out=out, worker_main=forked)
    assert supervisor.run() == 0
    other.join()
    assert out.getvalue() == "exec\n"
