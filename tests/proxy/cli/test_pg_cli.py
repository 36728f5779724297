"""`driftgate stats`, `usage` and `doctor` with [analytics] database_url: PostgreSQL's aggregates."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from driftgate.proxy.cli import main
from driftgate.proxy.observe.pg.schema import MIGRATIONS
from driftgate.proxy.observe.pg.writer import PgAnalytics
from driftgate.proxy.observe.records import RequestRecord
from tests.fakes.postgres_server import PASSWORD

REC = RequestRecord(
    time.time() - 60, "anthropic", "claude-sonnet-4-6", "anthropic", "anthropic", "messages",
    200, False, 100, 50, 0, 0, 120.0, 40.0, "sess-1", 0.01, "req_1", "claude-cli", "2.0.14",
    "sonnet",
)  # fmt: skip


def _config(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRIFTGATE_HOME", str(tmp_path))
    path = tmp_path / "config.toml"
    path.write_text(f'[analytics]\ndatabase_url = "{url}"\n')
    return path


def test_stats_usage_and_doctor_read_postgresql(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(_config(tmp_path, pg_url, monkeypatch))
    db = PgAnalytics(pg_url)
    db.start()
    db.consume([REC, REC._replace(status=529, cost_usd=None, session="sess-2")])
    db.consume([REC._replace(ts=time.time() - 3 * 3600, model="old-model")])
    assert db.flush()
    db.close()

    assert main(["--config", config, "stats"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("last 60m: 2 requests, 1 errors (50.0%)")
    assert "sess-2" in out and "old-model" not in out
    assert main(["--config", config, "stats", "--window", "4h", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["requests"] == 3
    assert main(["--config", config, "usage", "--json"]) == 0
    assert sum(r["requests"] for r in json.loads(capsys.readouterr().out)) == 3
    assert main(["--config", config, "usage", "--since", "1"]) == 0
    assert "claude-sonnet-4-6" in capsys.readouterr().out

    main(["--config", config, "doctor", "--offline", "--json"])
    report = capsys.readouterr().out
    [found] = [f for f in json.loads(report)["findings"] if f["section"] == "recorder"]
    assert (
        found["level"] == "ok"
        and f"schema {len(MIGRATIONS)}," in found["text"]
        and "requests in the last hour" in found["text"]
    )
    assert PASSWORD not in report and "driftgate:***@" in report


def test_an_unreachable_database_is_a_sentence_without_the_password(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = pg_url.replace(PASSWORD, "wrong-pass-123")
    config = str(_config(tmp_path, wrong, monkeypatch))
    assert main(["--config", config, "stats"]) == 2
    err = capsys.readouterr().err
    assert "cannot read the analytics database" in err and "password authentication" in err
    assert "wrong-pass-123" not in err
    assert main(["--config", config, "doctor", "--offline", "--json"]) == 1
    report = capsys.readouterr().out
    [found] = [f for f in json.loads(report)["findings"] if f["section"] == "recorder"]
    assert found["level"] == "fail" and "wrong-pass-123" not in report
