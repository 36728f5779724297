"""`driftgate top` as a user runs it: the real command in a pseudo-terminal, against a real gateway."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import socket
import struct
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest

ROWS, COLS = 40, 130


class Terminal:
    """A child process on a pty of ROWS x COLS; what it printed so far, and keys to send."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: its terminal has a size before Textual asks for it
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
            os.execve(argv[0], argv, env)
        self.output = b""

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        """Read until `text` has been drawn; fail naming it when it has not been by the deadline."""
        deadline = time.monotonic() + timeout
        start = len(self.output)
        while text.encode() not in self.output[start:]:
            left = deadline - time.monotonic()
            assert left > 0, (
                f"{text!r} never appeared; the end of the output: {self.output[-800:]!r}"
            )
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.2))
            if ready:
                try:
                    self.output += os.read(self.fd, 65536)
                except OSError:  # the child closed its side
                    break

    def press(self, key: str) -> None:
        os.write(self.fd, key.encode())

    def exit_status(self, timeout: float = 20.0) -> int:
        """The child's exit status, draining its output meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                with contextlib.suppress(OSError):
                    self.output += os.read(self.fd, 65536)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise AssertionError("driftgate top did not exit on q")

    def close(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)


@pytest.fixture
def terminal_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("")
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
            "DRIFTGATE_HOME": str(home), "TERM": "xterm-256color", "LANG": "C.UTF-8"}  # fmt: skip


def _driftgate() -> str:
    return str(Path(sys.executable).with_name("driftgate"))


def test_top_in_a_terminal_follows_a_gateway_that_comes_and_goes_and_quits_on_q(
    gateway_factory: Any, fake_anthropic: Any, terminal_env: dict[str, str]
) -> None:
    with socket.socket() as s:  # a port for the gateway that starts later
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    term = Terminal([_driftgate(), "top", "--url", url, "--interval", "0.3"], terminal_env)
    try:
        term.wait_for("NOT REACHABLE")
        gw = gateway_factory(backends=[fake_anthropic], port=port)
        term.wait_for(f"connected to {url}")  # drawn where it shows: the banner under the header
        term.press("4")
        term.wait_for("base URL")  # the Backends tab
        gw.stop()
        term.wait_for("NOT REACHABLE")
        term.press("q")
        assert term.exit_status() == 0
        assert b"Traceback" not in term.output
    finally:
        term.close()
