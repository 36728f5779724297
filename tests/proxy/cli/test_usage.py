"""`driftgate usage` and CLI output into a closed pipe, through the real command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from driftgate.proxy.analytics import Recorder, UsageRecord, usage_db_path
from driftgate.proxy.cli import main


def record(home: Path, count: int, *, ts: float, models: int = 1) -> None:
    recorder = Recorder(usage_db_path(home))
    for i in range(count):
        recorder.record(
            UsageRecord(
                ts,
                "anthropic",
                f"claude-{i % models}",
                "anthropic",
                "anthropic",
                "messages",
                200,
                False,
                10,
                4,
                0,
                0,
                12.0,
                None,
                None,
                0.001,
            )
        )
    recorder.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRIFTGATE_HOME", str(tmp_path))
    return tmp_path


def test_since_a_window_with_nothing_in_it_says_what_is_recorded(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record(home, 3, ts=time.time() - 7200)
    assert main(["usage", "--since", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("no usage in the last 1 hours; 3 request(s) recorded since ")
    assert "leave out --since" in out and "yet" not in out
    assert main(["usage", "--since", "3"]) == 0
    assert "claude-0" in capsys.readouterr().out


@pytest.mark.parametrize("hours", ["0", "-1", "-0.5", "nan", "inf", "soon"])
def test_since_refuses_hours_that_are_not_positive(
    home: Path, capsys: pytest.CaptureFixture[str], hours: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["usage", "--since", hours])
    assert exc.value.code == 2
    assert "--since" in capsys.readouterr().err


def test_nothing_recorded_says_so(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["usage"]) == 0
    assert capsys.readouterr().out.startswith("no usage recorded yet")


def _into_closed_pipe(args: list[str], home: Path) -> subprocess.CompletedProcess[bytes]:
    """Run the real CLI with stdout a pipe nobody reads any more (as after `| head`)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "driftgate.proxy.cli", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env={**os.environ, "DRIFTGATE_HOME": str(home)},
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize("args", [["usage", "--json"], ["usage"], ["backend", "list"]])
def test_a_reader_that_leaves_gets_no_traceback(home: Path, args: list[str]) -> None:
    record(home, 200, ts=time.time(), models=200)  # more than a pipe buffer of JSON
    r = _into_closed_pipe(args, home)
    assert r.stderr == b""
    assert r.returncode == 141  # 128 + SIGPIPE, as `yes | head` reports


def test_a_file_error_is_one_line_not_a_traceback(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (home / "config.toml.tmp").mkdir()  # where the atomic write goes: it cannot be opened
    assert main(["backend", "add", "x", "--kind", "openai", "--key-env", "X_KEY"]) == 1
    err = capsys.readouterr().err
    assert err == f"driftgate: {home / 'config.toml.tmp'}: Is a directory\n"
