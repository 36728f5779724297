"""`driftgate stats`: the window summary as tables or JSON (and `driftgate usage` still works)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from driftgate.proxy.cli import main
from driftgate.proxy.observe.recorder import Recorder
from driftgate.proxy.observe.records import RequestRecord
from driftgate.proxy.observe.usage_db import usage_db_path


def _record(**changes: object) -> RequestRecord:
    base = RequestRecord(
        time.time() - 60, "anthropic", "claude-sonnet-4-6", "anthropic", "anthropic", "messages",
        200, False, 100, 50, 0, 0, 120.0, 40.0, "sess-1", 0.01, "req_1", "claude-cli", "2.0.14",
        "sonnet",
    )  # fmt: skip
    return base._replace(**changes)


def test_stats_prints_tables_and_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRIFTGATE_HOME", str(tmp_path))
    assert main(["stats"]) == 0
    assert "no usage recorded yet" in capsys.readouterr().out
    rec = Recorder(usage_db_path(tmp_path))
    rec.record(_record())
    rec.record(_record(status=529, cost_usd=None, session="sess-2"))
    rec.record(_record(ts=time.time() - 3 * 3600, model="old-model"))  # outside the last hour
    rec.close()

    assert main(["stats"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("last 60m: 2 requests, 1 errors (50.0%)")
    for needle in (
        "MODEL",
        "claude-sonnet-4-6",
        "BACKEND",
        "CLIENT",
        "claude-cli",
        "SESSION",
        "sess-2",
    ):
        assert needle in out
    assert "old-model" not in out

    assert main(["stats", "--window", "4h", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["total"]["requests"] == 3
    assert {m["key"] for m in doc["models"]} == {"claude-sonnet-4-6", "old-model"}

    assert main(["usage", "--json"]) == 0  # the older command reads the same database
    assert sum(r["requests"] for r in json.loads(capsys.readouterr().out)) == 3


def test_a_bad_window_is_a_sentence_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRIFTGATE_HOME", str(tmp_path))
    assert main(["stats", "--window", "soon"]) == 2
    assert "window must be a positive number" in capsys.readouterr().err
