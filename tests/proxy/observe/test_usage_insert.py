"""UsageInsert: rows inserted with their NULL columns left out read back as the records were."""

from __future__ import annotations

import sqlite3

import pytest

from driftgate.proxy.observe.records import COLUMNS, RequestRecord
from driftgate.proxy.observe.usage_db import open_db
from driftgate.proxy.observe.usage_insert import CHUNK, NULLABLE, PLANS_KEPT, UsageInsert

FULL = RequestRecord(
    1000.25, "anthropic", "claude-sonnet-4-6", "anthropic", "anthropic", "messages", 200, True,
    1000, 500, 7, 3, 1200.5, 300.25, "sess-1", 0.0105, "req_1", "claude-cli", "2.1.0",
    "sonnet", 40, 50, 49, 30000, 29000, 12.5, 3.0, '{"x-ratelimit-limit-requests": "50"}',
    "guard_halted", "a budget is reached",
)  # fmt: skip
BARE = FULL._replace(
    stream=False, ttfb_ms=None, session=None, cost_usd=None, client_version=None,
    rl_requests_limit=None, rl_requests_remaining=None, rl_tokens_limit=None,
    rl_tokens_remaining=None, rl_reset_s=None, retry_after_s=None, ratelimit=None,
    outcome=None, reason=None,
)  # fmt: skip


def _read(conn: sqlite3.Connection) -> list[RequestRecord]:
    rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM usage ORDER BY id").fetchall()
    return [RequestRecord(*row[:7], bool(row[7]), *row[8:]) for row in rows]


def test_nullable_names_exactly_the_schemas_nullable_columns_without_a_default() -> None:
    conn = open_db(None)
    info = conn.execute("PRAGMA table_info(usage)").fetchall()
    nullable = {name for _, name, _, notnull, default, _ in info if not notnull and default is None}
    assert set(NULLABLE) == nullable - {"id"}
    assert set(NULLABLE) <= set(COLUMNS)


def test_every_mix_of_null_columns_reads_back_as_recorded_in_order() -> None:
    conn = open_db(None)
    rows = [FULL, BARE, BARE._replace(ts=1001.0), FULL._replace(outcome=None, reason=None)]
    rows += [FULL._replace(**{name: None}, ts=2000.0 + i) for i, name in enumerate(NULLABLE)]
    inserter = UsageInsert()
    with conn:
        inserter.insert(conn, rows)
    assert _read(conn) == rows  # every column, and ids in the records' order


def test_values_of_other_types_in_a_nullable_column_read_back_as_given() -> None:
    """A column's NULLs are told by its value's type: an int, a float or a str there is bound."""
    conn = open_db(None)
    rows = [
        BARE._replace(ts=1.0, cost_usd=0),  # an int where a float usually is
        BARE._replace(ts=2.0, cost_usd=0.5),
        BARE._replace(ts=3.0, cost_usd=None),
        BARE._replace(ts=4.0, rl_reset_s=7, retry_after_s=1.5, session="s"),
        BARE._replace(ts=5.0, rl_reset_s=7.25, retry_after_s=2, session=None),
    ]
    with conn:
        UsageInsert().insert(conn, rows)
    assert _read(conn) == rows  # (a REAL column reads an int back as a float: 0 == 0.0)


def test_a_none_in_a_not_null_column_still_fails() -> None:
    conn = open_db(None)
    with pytest.raises(sqlite3.IntegrityError), conn:
        UsageInsert().insert(conn, [BARE._replace(request_id=None)])


def test_the_statements_kept_are_bounded() -> None:
    conn = open_db(None)
    inserter = UsageInsert()
    values = [None, 1.0]
    rows = [
        BARE._replace(**{name: values[(n >> i) & 1] for i, name in enumerate(NULLABLE[3:12])})
        for n in range(PLANS_KEPT + 10)
    ]
    with conn:
        inserter.insert(conn, rows)
    assert len(inserter._plans) <= PLANS_KEPT
    assert len(_read(conn)) == len(rows)


@pytest.mark.parametrize("length", [1, 2, 3, 31, 32, 33, 63, 70, 101])
def test_runs_of_any_length_go_many_rows_a_statement_in_order(length: int) -> None:
    """A run longer than a statement's rows is split; every row reads back, in order."""
    conn = open_db(None)
    rows = [FULL._replace(ts=float(i), request_id=f"req_{i}") for i in range(length)]
    rows += [BARE._replace(ts=float(1000 + i)) for i in range(length)]  # another set of columns
    rows += [FULL._replace(ts=float(2000 + i)) for i in range(3)]
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    with conn:
        UsageInsert().insert(conn, rows)
    conn.set_trace_callback(None)
    assert _read(conn) == rows
    inserts = [s for s in statements if s.startswith("INSERT")]

    def statements_for(run: int) -> int:  # CHUNK rows a statement, then halves: 32, 16, ... 1
        return run // CHUNK + bin(run % CHUNK).count("1")

    assert len(inserts) == 2 * statements_for(length) + statements_for(3)
