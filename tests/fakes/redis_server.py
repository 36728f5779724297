"""A real Redis on loopback: Debian's redis-server on a free port, a scratch dir, no persistence."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.fakes.server_thread import free_port

BOUND = 10.0  # seconds redis-server may take to start or stop


def available() -> bool:
    """Whether redis-server is installed (.ci/debian-packages lists it)."""
    return shutil.which("redis-server") is not None


def require() -> None:
    """Skip without redis-server, except in CI, which installs it: there its absence fails."""
    if available():
        return
    if os.environ.get("CI"):
        pytest.fail("redis-server is missing: .ci/debian-packages lists it and CI installs it")
    pytest.skip(
        "needs redis-server (apt-get install -y redis-server; listed in .ci/debian-packages)"
    )


class RedisServer:
    """One redis-server process; `stop()` and `start()` again keep its port (a restart)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis://127.0.0.1:PORT/0"""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start on a free port (the first time) or on the same port (after stop)."""
        for _ in range(5):  # a free port can be taken between finding and binding it
            port = self.port or free_port()
            proc = subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(self.folder),
                 "--logfile", str(self.folder / "redis.log"), "--daemonize", "no"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if _answers(port, proc):
                self.port, self._proc = port, proc
                return self
            proc.kill()
            proc.wait()
            if self.port:
                break
        raise RuntimeError(f"redis-server did not start (see {self.folder / 'redis.log'})")

    def stop(self) -> None:
        """Stop it now (SIGKILL: what an outage looks like to a client); its data is gone."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(BOUND)
            self._proc = None


def _answers(port: int, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return True
        except OSError:
            time.sleep(0.02)
    return False


@contextmanager
def running_redis(folder: Path) -> Iterator[RedisServer]:
    """A started redis-server, stopped afterwards."""
    require()
    server = RedisServer(folder).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """redis-server on a free loopback port, a scratch dir, `--save ''`; stopped after the test."""
    with running_redis(tmp_path / "redis") as server:
        yield server


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for a module's tests, each under its own key prefix."""
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server
