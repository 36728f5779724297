"""The usage database and the recorder: cost from template prices, SQLite writes off the request path, summaries, the CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from driftgate.proxy.cli import main
from driftgate.proxy.cli.usage import format_table
from driftgate.proxy.errors import ConfigError
from driftgate.proxy.observe.pricing import cost_usd
from driftgate.proxy.observe.recorder import Recorder
from driftgate.proxy.observe.records import RequestRecord
from driftgate.proxy.observe.usage_db import MIGRATIONS, open_db, usage_db_path
from driftgate.proxy.templates import load_bundled

BUNDLED = load_bundled()

BASE = RequestRecord(
    ts=1000.0,
    backend="anthropic",
    model="claude-sonnet-4-6",
    client_dialect="anthropic",
    upstream_dialect="anthropic",
    endpoint="messages",
    status=200,
    stream=True,
    input_tokens=1000,
    output_tokens=500,
    cache_read_tokens=0,
    cache_write_tokens=0,
    latency_ms=1200.0,
    ttfb_ms=300.0,
    session="sess-1",
    cost_usd=0.0105,
)


def test_cost_from_template_prices_per_million_tokens() -> None:
    # sonnet: input 3, output 15, cache_read 0.3, cache_write 3.75 USD per MTok
    cost = cost_usd("claude-sonnet-4-6", "anthropic", 1_000_000, 100_000, 2_000_000, 0, BUNDLED)
    assert cost == pytest.approx(3.0 + 1.5 + 0.6)
    write = cost_usd("claude-sonnet-4-6", "anthropic", 0, 0, 0, 1_000_000, BUNDLED)
    assert write == pytest.approx(3.75)


def test_cost_resolves_aliases_and_uses_the_dialects_template() -> None:
    assert cost_usd("opus", "anthropic", 1_000_000, 0, 0, 0, BUNDLED) == pytest.approx(5.0)
    assert cost_usd("gpt-4o", "openai", 1_000_000, 1_000_000, 0, 0, BUNDLED) == pytest.approx(12.5)
    assert cost_usd("gpt-4o", "anthropic", 1, 1, 0, 0, BUNDLED) is None


def test_cost_is_unknown_for_unknown_models_and_missing_prices() -> None:
    assert cost_usd("llama-3.3-70b", "openai", 10, 10, 0, 0, BUNDLED) is None
    # OpenAI has no cache-write price: zero cache writes is fine, some is unknown
    assert cost_usd("gpt-4o", "openai", 0, 0, 0, 0, BUNDLED) == 0.0
    assert cost_usd("gpt-4o", "openai", 0, 0, 0, 5, BUNDLED) is None


def test_records_reach_sqlite_and_summarise_per_backend_and_model(tmp_path: Path) -> None:
    db = tmp_path / "home" / "usage.sqlite3"
    rec = Recorder(db)
    rec.record(BASE)
    rec.record(BASE._replace(input_tokens=10, output_tokens=5, cost_usd=0.0005, ttfb_ms=100.0))
    rec.record(BASE._replace(status=529, output_tokens=0, cost_usd=None, latency_ms=50.0))
    rec.record(BASE._replace(backend="local", model="qwen", cost_usd=None))
    rows = {(r["backend"], r["model"]): r for r in rec.summary()}
    rec.close()
    sonnet = rows[("anthropic", "claude-sonnet-4-6")]
    assert sonnet["requests"] == 3 and sonnet["errors"] == 1
    assert sonnet["input_tokens"] == 2010 and sonnet["output_tokens"] == 505
    assert sonnet["cost_usd"] == pytest.approx(0.011)
    assert sonnet["unpriced"] == 0  # the failed request is not "unpriced"
    assert sonnet["avg_ttfb_ms"] == pytest.approx(700 / 3)
    assert rows[("local", "qwen")]["unpriced"] == 1
    assert rows[("local", "qwen")]["cost_usd"] is None
    # and they are really on disk
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM usage").fetchone()[0] == 4


def test_count_tokens_is_never_a_completion(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "usage.sqlite3")
    rec.record(BASE)
    rec.record(
        BASE._replace(endpoint="count_tokens", input_tokens=9999, output_tokens=7, cost_usd=1.0)
    )
    [row] = rec.summary()
    rec.close()
    assert row["requests"] == 1 and row["count_tokens"] == 1
    assert row["input_tokens"] == 1000 and row["output_tokens"] == 500
    assert row["cost_usd"] == pytest.approx(0.0105)


def test_summary_since_filters_by_timestamp() -> None:
    rec = Recorder(None)
    rec.record(BASE._replace(ts=100.0))
    rec.record(BASE._replace(ts=200.0, model="claude-haiku-4-5"))
    assert [r["model"] for r in rec.summary(since=150.0)] == ["claude-haiku-4-5"]
    assert len(rec.summary()) == 2
    rec.close()


def test_close_flushes_what_is_queued_and_later_records_are_dropped(tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    rec = Recorder(db)
    for i in range(1200):  # more than one batch
        rec.record(BASE._replace(ts=float(i)))
    rec.close()
    rec.close()  # idempotent
    rec.record(BASE)
    assert rec.dropped == 1
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM usage").fetchone()[0] == 1200


def test_db_holds_no_content_and_is_private(tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    Recorder(db).close()
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    with sqlite3.connect(db) as conn:
        cols = {row[1] for row in conn.execute("PRAGMA table_info(usage)")}
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert not cols & {"prompt", "messages", "content", "api_key", "authorization"}


def test_reopening_keeps_data_and_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    rec = Recorder(db)
    rec.record(BASE)
    rec.close()
    rec = Recorder(db)
    assert rec.summary()[0]["requests"] == 1
    rec.close()
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(ConfigError, match="newer"):
        open_db(db)


def test_a_write_failure_does_not_kill_the_writer(tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    rec = Recorder(db)
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TRIGGER no_errors BEFORE INSERT ON usage WHEN NEW.status = 418 "
                     "BEGIN SELECT RAISE(ABORT, 'teapot'); END")  # fmt: skip
    rec.record(BASE._replace(status=418))
    rec.flush()
    rec.record(BASE)
    assert rec.summary()[0]["requests"] == 1
    rec.close()


def test_usage_cli_prints_a_table_and_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRIFTGATE_HOME", str(tmp_path))
    assert main(["usage"]) == 0
    assert "no usage recorded yet" in capsys.readouterr().out
    rec = Recorder(usage_db_path(tmp_path))
    rec.record(BASE)
    rec.record(BASE._replace(ts=1.0, backend="local", model="qwen", cost_usd=None))
    rec.close()
    assert main(["usage"]) == 0
    out = capsys.readouterr().out
    assert "claude-sonnet-4-6" in out and "qwen" in out and "TOTAL" in out
    assert main(["usage", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["model"] for r in rows} == {"claude-sonnet-4-6", "qwen"}
    assert main(["usage", "--since", "1", "--json"]) == 0  # records are from 1970
    assert json.loads(capsys.readouterr().out) == []


def test_format_table_marks_partly_priced_costs() -> None:
    row = {
        "backend": "a", "model": "m", "requests": 2, "count_tokens": 0, "errors": 0,
        "input_tokens": 1, "output_tokens": 2, "cache_read_tokens": 0, "cache_write_tokens": 0,
        "cost_usd": 0.5, "unpriced": 1, "avg_latency_ms": 10.4, "avg_ttfb_ms": None,
    }  # fmt: skip
    lines = format_table([row]).splitlines()
    assert lines[0].split()[0] == "BACKEND"
    assert "0.5000+" in lines[1] and "0.5000+" in lines[2]
    assert len(lines) == 3
