"""A real forward proxy on loopback: Debian's tinyproxy, started with a generated config."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.server_thread import free_port

CONFIG = """\
Port {port}
Listen 127.0.0.1
Timeout 30
MaxClients 64
Allow 127.0.0.1
LogFile "{folder}/tinyproxy.log"
LogLevel Connect
PidFile "{folder}/tinyproxy.pid"
"""


@dataclass(frozen=True)
class Tinyproxy:
    """A running tinyproxy: its port, log file and (when it demands them) credentials."""

    port: int
    log: Path
    credentials: tuple[str, str] | None

    def url(self, with_credentials: bool = True) -> str:
        """http://[user:password@]127.0.0.1:port"""
        if with_credentials and self.credentials is not None:
            user, password = self.credentials
            return f"http://{user}:{password}@127.0.0.1:{self.port}"
        return f"http://127.0.0.1:{self.port}"

    def logged(self) -> str:
        """What the proxy logged so far (CONNECT targets and requests)."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def available() -> bool:
    """Whether the tinyproxy binary is installed (.ci/debian-packages lists it)."""
    return shutil.which("tinyproxy") is not None


@contextmanager
def running_tinyproxy(
    folder: Path, credentials: tuple[str, str] | None = None
) -> Iterator[Tinyproxy]:
    """Start tinyproxy in the foreground on a free port; stop it afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    for _ in range(5):  # a free port can be taken between finding and binding it: try another
        port = free_port()
        conf = CONFIG.format(port=port, folder=folder)
        if credentials is not None:
            conf += f"BasicAuth {credentials[0]} {credentials[1]}\n"
        (folder / "tinyproxy.conf").write_text(conf)
        proc = subprocess.Popen(
            ["tinyproxy", "-d", "-c", str(folder / "tinyproxy.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if _wait_listening(port, proc):
            break
        proc.kill()
        proc.wait()
    else:
        raise RuntimeError("tinyproxy did not start (see its log in " + str(folder) + ")")
    try:
        yield Tinyproxy(port, folder / "tinyproxy.log", credentials)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.02)
    return False
