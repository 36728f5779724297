"""The recorder: schema migration from older databases, retention, bounded backlog, sinks."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from driftgate.proxy.observe.recorder import Recorder
from driftgate.proxy.observe.records import COLUMNS, RequestRecord
from driftgate.proxy.observe.usage_db import MIGRATIONS, open_db

BASE = RequestRecord(
    1000.0, "anthropic", "claude-sonnet-4-6", "anthropic", "anthropic", "messages", 200, False,
    10, 5, 0, 0, 100.0, 50.0, None, 0.001,
)  # fmt: skip


def test_a_schema_1_database_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.executescript(MIGRATIONS[0])
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO usage (ts, backend, model, client_dialect, upstream_dialect, endpoint,"
            " status, stream, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,"
            " latency_ms, ttfb_ms, session, cost_usd)"
            " VALUES (5.0, 'old', 'm', 'anthropic', 'anthropic', 'messages', 200, 0, 1, 2, 0, 0,"
            " 10.0, NULL, NULL, 0.5)"
        )
    conn = open_db(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) == 3
    columns = [row[1] for row in conn.execute("PRAGMA table_info(usage)")]
    assert tuple(columns[1:]) == COLUMNS  # the record's fields are the columns, in order
    [row] = conn.execute("SELECT * FROM usage").fetchall()
    old = RequestRecord(*row[1:])
    assert old.backend == "old" and old.client == "other" and old.reasoning_tokens == 0
    assert old.outcome is None and old.reason is None  # forwarded, as every older record was
    conn.close()


def test_retention_deletes_old_records(tmp_path: Path) -> None:
    now = 10 * 86400.0
    rec = Recorder(tmp_path / "u.sqlite3", retention_days=2, clock=lambda: now)
    rec.record(BASE._replace(ts=now - 3 * 86400))  # older than 2 days
    rec.record(BASE._replace(ts=now - 86400))
    rec.flush()
    kept = rec.query(lambda c: [r[0] for r in c.execute("SELECT ts FROM usage")], [])
    rec.close()
    assert kept == [now - 86400]


class Gate:
    """A sink that holds the recorder's thread until released, so a backlog builds."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.seen = 0

    def __call__(self, records: Sequence[RequestRecord]) -> None:
        self.entered.set()
        self.release.wait(10)
        self.seen += len(records)


def test_a_writer_that_falls_behind_drops_and_counts_instead_of_growing() -> None:
    gate = Gate()
    rec = Recorder(None, limit=10)
    rec.add_sink(gate)
    rec.record(BASE)
    assert gate.entered.wait(10)  # the thread is busy with the first record
    for _ in range(15):
        rec.record(BASE)
    assert rec.backlog == 10 and rec.dropped == 6  # the one in the sink counts until done
    gate.release.set()
    rec.flush()
    assert rec.backlog == 0 and gate.seen == 10
    assert rec.summary()[0]["requests"] == 10
    rec.close()


def test_analytics_off_keeps_no_database_but_still_feeds_sinks() -> None:
    seen: list[RequestRecord] = []
    rec = Recorder(None, persist=False)
    rec.add_sink(seen.extend)
    rec.record(BASE)
    rec.flush()
    assert seen == [BASE] and rec.summary() == []
    rec.close()


def test_a_failing_sink_does_not_stop_the_others() -> None:
    seen: list[RequestRecord] = []

    def broken(records: Sequence[RequestRecord]) -> None:
        raise RuntimeError("bug")

    rec = Recorder(None)
    rec.add_sink(broken)
    rec.add_sink(seen.extend)
    rec.record(BASE)
    rec.flush()
    assert seen == [BASE]
    rec.close()
