"""Workers started by fork: the child's exit status, signals, descriptors and ids of its own."""

from __future__ import annotations

import os
import select
import signal
import sys
import time

import pytest

from driftgate.proxy.observe import record_rows
from driftgate.proxy.serve.worker_fork import fork_worker
from driftgate.proxy.translate import responses_response


def test_the_status_run_returns_is_the_exit_status_and_an_exception_is_1() -> None:
    assert fork_worker(lambda: 7, []).wait(timeout=30) == 7

    def broken() -> int:
        raise RuntimeError("a bug in the worker")

    assert fork_worker(broken, []).wait(timeout=30) == 1


@pytest.mark.parametrize(("code", "status"), [(None, 0), (0, 0), (3, 3), ("stopped: why", 1)])
def test_sys_exit_in_a_worker_gives_the_status_the_interpreter_would(
    code: int | str | None, status: int
) -> None:
    def exits() -> int:
        sys.exit(code)

    assert fork_worker(exits, []).wait(timeout=30) == status


def test_a_signalled_worker_reads_as_popen_reads_it_and_wait_has_a_bound() -> None:
    def sleeper() -> int:
        time.sleep(60)
        return 0

    worker = fork_worker(sleeper, [])
    assert worker.poll() is None
    with pytest.raises(TimeoutError):
        worker.wait(timeout=0.05)
    worker.send_signal(signal.SIGTERM)  # the child's SIGTERM is the default again: it ends it
    assert worker.wait(timeout=30) == -signal.SIGTERM
    worker.kill()  # after it was reaped: no signal goes to a pid that may be another's now
    assert worker.returncode == -signal.SIGTERM


def test_the_child_closes_the_descriptors_it_is_given() -> None:
    read_end, write_end = os.pipe()
    worker = fork_worker(lambda: (time.sleep(60), 0)[1], [write_end])
    try:
        os.close(write_end)
        # EOF only once no process holds the write end: the child closed its copy at once.
        ready, _, _ = select.select([read_end], [], [], 30)
        assert ready and os.read(read_end, 1) == b""
    finally:
        worker.kill()
        worker.wait(timeout=30)
        os.close(read_end)


def test_a_forked_worker_makes_ids_of_its_own() -> None:
    read_end, write_end = os.pipe()

    def report() -> int:
        ids = f"{record_rows._ID_PREFIX} {responses_response.new_id('resp_')}"
        os.write(write_end, ids.encode())
        return 0

    assert fork_worker(report, []).wait(timeout=30) == 0
    os.close(write_end)
    child_request, child_response = os.read(read_end, 200).decode().split()
    os.close(read_end)
    # The same prefix in two workers would give two requests (or two stored turns) one id.
    assert child_request != record_rows._ID_PREFIX
    assert child_response[len("resp_") : -16] != responses_response._ID_PREFIX
