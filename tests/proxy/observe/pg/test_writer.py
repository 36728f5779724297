"""The PostgreSQL writer against a real server: COPY batches, aggregates, partitions, migrations."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import psycopg
import pytest

from driftgate.proxy.observe.pg import schema
from driftgate.proxy.observe.pg.writer import PgAnalytics
from driftgate.proxy.observe.recorder import Recorder
from driftgate.proxy.observe.records import RequestRecord
from driftgate.proxy.observe.summary import summarise_window
from driftgate.proxy.observe.usage_db import summarise
from tests.fakes.postgres_server import PgCluster
from tests.fakes.server_thread import closed_port
from tests.fakes.silent_server import SilentServer

NOW = 1_796_040_000.0  # 2026-11-30 (UTC)
DAY = 86400.0
BASE = RequestRecord(
    NOW, "anthropic", "claude-sonnet-4-6", "anthropic", "anthropic", "messages", 200, False,
    100, 50, 3, 4, 100.0, 40.0, "s1", 0.01, "req_1", "claude-cli", "2.0.14", "sonnet",
)  # fmt: skip


def _rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def _written(url: str, records: list[list[RequestRecord]], **kw: Any) -> PgAnalytics:
    db = PgAnalytics(url, clock=lambda: NOW, **kw)
    db.start()
    for batch in records:
        db.consume(batch)
    assert db.flush()
    return db


def _mixed() -> list[RequestRecord]:
    records = [BASE._replace(ts=NOW + i, latency_ms=float(ms)) for i, ms in enumerate(range(10, 1010, 10))]  # fmt: skip
    records.append(BASE._replace(status=529, cost_usd=None, output_tokens=0, session="s2"))
    records.append(BASE._replace(backend="local", model="qwen", client="openai-python",
                                 cost_usd=None, session=None, ttfb_ms=None))  # fmt: skip
    records.append(BASE._replace(endpoint="count_tokens", output_tokens=0, cost_usd=0.0))
    records.append(BASE._replace(status=499, session="s2"))
    return records


def test_aggregates_say_what_the_sqlite_summary_says(pg_url: str) -> None:
    records = _mixed()
    db = _written(pg_url, [records[:50], records[50:]])
    try:
        from_pg = asyncio.run(_summary(db, NOW - 60, NOW + 600)).as_json()
        pg_usage = asyncio.run(_usage(db))
    finally:
        db.close()
    sqlite = Recorder(None)
    for r in records:
        sqlite.record(r)
    sqlite.flush()
    from_sqlite = sqlite.query(lambda c: summarise_window(c, NOW - 60, NOW + 600), None)
    sqlite_usage = sqlite.query(lambda c: summarise(c, None), [])
    sqlite.close()
    assert from_sqlite is not None
    expected = from_sqlite.as_json()
    exact = ("requests", "errors", "count_tokens", "input_tokens", "output_tokens", "unpriced",
             "cache_read_tokens", "cache_write_tokens", "cost_usd", "error_rate")  # fmt: skip
    for dim in ("models", "backends", "clients", "sessions"):
        assert [g["key"] for g in from_pg[dim]] == [g["key"] for g in expected[dim]]
    for got, want in zip([from_pg["total"], *from_pg["models"], *from_pg["sessions"]],
                         [expected["total"], *expected["models"], *expected["sessions"]], strict=True):  # fmt: skip
        assert {k: got[k] for k in exact} == pytest.approx({k: want[k] for k in exact})
        for p in ("p50_latency_ms", "p95_latency_ms", "p50_ttfb_ms", "p95_ttfb_ms"):
            if want[p] is None:
                assert got[p] is None
            else:  # from histograms: within a bucket (10 a decade: 26% wide)
                assert got[p] == pytest.approx(want[p], rel=0.27)
    assert from_pg["session_count"] == expected["session_count"]
    for got_row, want_row in zip(pg_usage, sqlite_usage, strict=True):
        for key in ("backend", "model", "requests", "count_tokens", "errors", "input_tokens",
                    "output_tokens", "cost_usd", "unpriced", "avg_latency_ms", "avg_ttfb_ms"):  # fmt: skip
            assert got_row[key] == pytest.approx(want_row[key]), key


async def _summary(db: PgAnalytics, since: float, until: float) -> Any:
    return await db.summary(since, until)


async def _usage(db: PgAnalytics) -> Any:
    return await db.usage(None)


def test_copy_batches_land_in_daily_partitions_made_ahead(pg_url: str) -> None:
    old = [BASE._replace(ts=NOW - 10 * DAY + i, request_id=f"old-{i}") for i in range(3)]
    new = [BASE._replace(ts=NOW + i, request_id=f"new-{i}") for i in range(200)]
    db = _written(pg_url, [old, new[:100], new[100:]])
    db.close()
    assert db.written == 203 and db.dropped == 0
    parts = asyncio.run(_partitions(pg_url))
    days = [name[-8:] for name, _ in parts["driftgate_requests"]]
    # the old records' day (made when they came), today and two days ahead
    assert days == ["20261120", "20261130", "20261201", "20261202"]
    assert [name[-8:] for name, _ in parts["driftgate_minutes"]] == days
    assert _rows(pg_url, "SELECT count(*) FROM driftgate_requests_20261130") == [(200,)]
    assert _rows(pg_url, "SELECT count(*) FROM driftgate_requests_20261120") == [(3,)]
    [(first,)] = _rows(pg_url, "SELECT request_id FROM driftgate_requests ORDER BY ts LIMIT 1")
    assert first == "old-0"
    # a minute's 60 requests are one aggregate row per key
    assert _rows(pg_url, "SELECT sum(requests) FROM driftgate_minutes_20261130") == [(200,)]
    assert _rows(pg_url, "SELECT count(*) FROM driftgate_minutes_20261130") == [(4,)]


async def _partitions(url: str) -> dict[str, list[Any]]:
    conn = await psycopg.AsyncConnection.connect(url)
    try:
        return await schema.partitions(conn)
    finally:
        await conn.close()


def test_retention_drops_whole_old_partitions(pg_url: str) -> None:
    old = [BASE._replace(ts=NOW - 10 * DAY + i) for i in range(5)]
    recent = [BASE._replace(ts=NOW - 2 * DAY + i) for i in range(7)]
    _written(pg_url, [old, recent]).close()
    # a gateway with 5 days of retention: at connect it drops the partitions past it, whole
    db = _written(pg_url, [], retention_days=5)
    db.close()
    parts = asyncio.run(_partitions(pg_url))
    assert [n[-8:] for n, _ in parts["driftgate_requests"]] == ["20261128", "20261130",
                                                                "20261201", "20261202"]  # fmt: skip
    assert next(n[-8:] for n, _ in parts["driftgate_minutes"]) == "20261128"
    assert _rows(pg_url, "SELECT count(*) FROM driftgate_requests") == [(7,)]
    assert _rows(pg_url, "SELECT sum(requests) FROM driftgate_minutes") == [(7,)]
    assert _rows(pg_url, "SELECT to_regclass('driftgate_requests_20261120')") == [(None,)]


def test_two_writers_starting_together_apply_each_migration_once(pg_url: str) -> None:
    ready = threading.Barrier(3)
    writers = [PgAnalytics(pg_url, clock=lambda: NOW) for _ in range(3)]
    errors: list[BaseException] = []

    def start(db: PgAnalytics) -> None:
        ready.wait()
        try:
            db.start()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(db,)) for db in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors
        assert sorted(len(db.applied) for db in writers) == [0, 0, len(schema.MIGRATIONS)]
        versions = _rows(pg_url, "SELECT version FROM driftgate_schema_migrations ORDER BY 1")
        assert versions == [(v,) for v, _, _ in schema.MIGRATIONS]
        for db in writers:  # and every one of them writes
            db.consume([BASE])
        for db in writers:
            assert db.flush()
        assert _rows(pg_url, "SELECT sum(requests) FROM driftgate_minutes") == [(3,)]
    finally:
        for db in writers:
            db.close()


def test_a_database_from_a_newer_driftgate_is_refused(pg_url: str) -> None:
    _written(pg_url, []).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO driftgate_schema_migrations (version, description) VALUES (99, 'x')"
        )
    with pytest.raises(schema.SchemaTooNew, match="newer than this driftgate"):
        PgAnalytics(pg_url).start()


def test_the_buffer_is_bounded_and_what_does_not_fit_is_counted() -> None:
    nowhere = f"postgresql://u:pw@127.0.0.1:{closed_port()}/x"  # nothing listens: never connects
    db = PgAnalytics(nowhere, limit=10, close_wait=0.2)
    db.start(wait=0.5)
    db.consume([BASE] * 6)
    db.consume([BASE] * 6)  # does not fit: dropped whole, counted
    db.consume([BASE] * 4)
    assert (db.backlog, db.dropped, db.connected) == (10, 6, False)
    deadline = time.monotonic() + 15  # the first attempt's failure, however slow the machine
    while "error" not in db.state() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert db.state()["error"].startswith("connection failed")
    db.close()  # what never reached the database is counted too
    assert (db.backlog, db.dropped) == (0, 16)


def test_a_schema_1_database_is_migrated_and_keeps_its_rows(pg_url: str) -> None:
    version, description, sql = schema.MIGRATIONS[0]
    with psycopg.connect(pg_url, autocommit=True) as conn:  # what the first release made
        conn.execute(
            f"CREATE TABLE {schema.VERSIONS} (version integer PRIMARY KEY, "
            "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(sql)
        conn.execute(f"INSERT INTO {schema.VERSIONS} VALUES (%s, %s)", (version, description))
        conn.execute(
            "CREATE TABLE driftgate_requests_20261130 PARTITION OF driftgate_requests "
            "FOR VALUES FROM ('2026-11-30') TO ('2026-12-01')"
        )
        conn.execute(
            "INSERT INTO driftgate_requests (ts, backend, model, client_dialect, upstream_dialect,"
            " endpoint, status, stream, input_tokens, output_tokens, cache_read_tokens,"
            " cache_write_tokens, latency_ms, request_id, client, model_requested,"
            " reasoning_tokens) VALUES (to_timestamp(%s), 'old', 'm', 'anthropic', 'anthropic',"
            " 'messages', 200, false, 1, 2, 0, 0, 10.0, 'r', 'other', 'm', 0)",
            (NOW,),
        )
    refused = BASE._replace(status=503, outcome="guard_halted", reason="the budget", cost_usd=0.0)
    db = _written(pg_url, [[BASE, refused]])
    db.close()
    assert db.applied == [v for v, _, _ in schema.MIGRATIONS[1:]]
    rows = _rows(pg_url, "SELECT backend, outcome, reason FROM driftgate_requests ORDER BY backend")
    assert rows == [("anthropic", None, None), ("anthropic", "guard_halted", "the budget"),
                    ("old", None, None)]  # fmt: skip
    assert _rows(pg_url, "SELECT sum(requests), sum(refused) FROM driftgate_minutes") == [(1, 1)]
    assert _rows(pg_url, "SELECT backend, outcome, reason, requests FROM driftgate_refusals") == [
        ("anthropic", "guard_halted", "the budget", 1)
    ]


def test_a_database_that_accepts_and_never_answers_is_down_not_waited_for() -> None:
    with SilentServer() as silent:
        db = PgAnalytics(silent.url(), limit=10, close_wait=0.2, timeout=2)
        db.start()
        db.consume([BASE] * 6)
        db.consume([BASE] * 6)  # does not fit: dropped whole, counted
        deadline = time.monotonic() + 20  # the connect timeout (2 s), however slow the machine
        while "error" not in db.state() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "timeout" in db.state()["error"]  # not refused: it waited, then gave up
        assert silent.accepted >= 1 and not db.connected
        assert (db.backlog, db.dropped) == (6, 6)
        # a read (what /analytics does) fails after the timeout instead of waiting with it
        with pytest.raises(psycopg.OperationalError, match="timeout"):
            asyncio.run(asyncio.wait_for(_summary(db, NOW - 60, NOW), timeout=20))
        db.close()
    assert (db.backlog, db.dropped) == (0, 12)


def test_a_database_that_hangs_mid_write_is_cut_off_and_written_once_it_answers(
    pg_cluster: PgCluster, caplog: pytest.LogCaptureFixture
) -> None:
    server = pg_cluster.server()  # its own server: this test freezes it
    url = server.create_database("frozen")
    db = _written(url, [[BASE]], timeout=2, write_every=0.05)
    assert db.written == 1 and db.connected
    asyncio.run(_summary(db, NOW - 60, NOW))  # the reader's connection is open too
    pids = server.freeze()  # the writer's connection stays open; nothing answers on it
    try:
        db.consume([BASE._replace(request_id="during")] * 3)
        deadline = time.monotonic() + 20  # the write gives up after 2 s, however slow the machine
        while db.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not db.connected and db.backlog == 3
        assert "unreachable (no answer within 2 s)" in caplog.text  # the write was cut off
        # a read on the kept connection gives up too, and is not tried again on a new one
        with pytest.raises(psycopg.OperationalError, match="no answer within 2 s"):
            asyncio.run(asyncio.wait_for(_summary(db, NOW - 60, NOW), timeout=20))
    finally:
        server.thaw(pids)
    assert db.flush(timeout=30)  # reconnected: the buffered records are written
    db.close()
    assert (db.written, db.dropped, db.connected) == (4, 0, False)
    assert _rows(url, "SELECT count(*) FROM driftgate_requests WHERE request_id = 'during'") == [
        (3,)
    ]
