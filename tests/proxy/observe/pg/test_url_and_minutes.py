"""The database URL's checks and redaction; per-minute aggregates and their percentiles."""

from __future__ import annotations

import datetime as dt

import pytest

from driftgate.proxy.observe.pg.minutes import (
    BOUNDS_MS,
    HIST_SLOTS,
    aggregate,
    merge,
    percentiles,
    slot,
)
from driftgate.proxy.observe.pg.url import redact_url, url_problem, url_secrets
from driftgate.proxy.observe.records import RequestRecord

REC = RequestRecord(
    120.5, "b", "m", "anthropic", "anthropic", "messages", 200, False,
    10, 5, 0, 0, 100.0, 40.0, "s", 0.5, "r", "claude-cli", None, "m",
)  # fmt: skip


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://dg:s3cret@db:5432/x", "postgresql://dg:***@db:5432/x"),
        ("postgres://dg:p%40ss@db/x?sslmode=require", "postgres://dg:***@db/x?sslmode=require"),
        (
            "postgresql://db/x?user=dg&password=s3cret",
            "postgresql://db/x?user=dg&password=%2A%2A%2A",
        ),
        ("postgresql://dg@db/x", "postgresql://dg@db/x"),
    ],
)
def test_the_password_is_masked(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    for secret in url_secrets(url):
        assert secret not in redact_url(url)


def test_url_secrets_name_both_spellings_of_an_encoded_password() -> None:
    assert url_secrets("postgresql://dg:p%40ss@db/x") == ["p%40ss", "p@ss"]
    assert url_secrets(None) == [] and url_secrets("postgresql://db/x") == []


def test_only_postgresql_urls_are_accepted() -> None:
    assert url_problem("postgresql://u:p@h/db") is None
    assert url_problem(None) is None
    assert "postgresql://" in (url_problem("mysql://u:p@h/db") or "")
    assert url_problem("postgresql:///db") is None  # libpq's default: the local socket


def test_slots_and_percentiles_from_a_histogram() -> None:
    assert slot(0.2) == 0 and slot(1.0) == 0 and slot(1.01) == 1
    assert slot(10**7) == HIST_SLOTS - 1  # beyond the last bound
    hist = [0] * HIST_SLOTS
    for ms in [20.0] * 50 + [400.0] * 45 + [5000.0] * 5:
        hist[slot(ms)] += 1
    p50, p95 = percentiles(hist)
    assert p50 == pytest.approx(20.0, rel=0.13) and p95 == pytest.approx(400.0, rel=0.13)
    assert percentiles([0] * HIST_SLOTS) == (None, None)
    assert len(BOUNDS_MS) + 1 == HIST_SLOTS


def test_one_row_per_minute_and_key_count_tokens_apart() -> None:
    rows = aggregate([
        REC, REC._replace(ts=150.0, status=529, cost_usd=None),
        REC._replace(endpoint="count_tokens", output_tokens=0, cost_usd=0.0),
        REC._replace(ts=200.0, session=None, status=499, ttfb_ms=None),
    ])  # fmt: skip
    assert [r[:5] for r in rows] == [
        (dt.datetime.fromtimestamp(120, dt.UTC), "m", "b", "claude-cli", "s"),
        (dt.datetime.fromtimestamp(180, dt.UTC), "m", "b", "claude-cli", ""),
    ]
    first = dict(zip(("requests", "count_tokens", "errors", "failed"), rows[0][5:9], strict=True))
    assert first == {"requests": 2, "count_tokens": 1, "errors": 1, "failed": 1}
    gone = rows[1]
    assert gone[5:9] == (1, 0, 0, 1)  # a client that hung up is not an error, but did fail
    assert sum(gone[-1]) == 0 and sum(gone[-2]) == 1  # no TTFB, one latency
    twice = merge(rows + rows)
    assert [r[:5] for r in twice] == [r[:5] for r in rows]
    assert twice[0][5] == 4 and sum(twice[0][-2]) == 2 * sum(rows[0][-2])


def test_the_binary_copy_types_follow_the_record_fields() -> None:
    from driftgate.proxy.observe.pg.schema import MIGRATIONS, REQUEST_TYPES
    from driftgate.proxy.observe.records import COLUMNS

    assert len(REQUEST_TYPES) == len(COLUMNS)
    ddl = "".join(sql for _, _, sql in MIGRATIONS)  # each column as its migration adds it
    for column, kind in zip(COLUMNS, REQUEST_TYPES, strict=True):
        spelled = {"int4": "integer", "int8": "bigint", "float8": "double precision",
                   "bool": "boolean"}.get(kind, kind)  # fmt: skip
        assert f"{column} {spelled}" in ddl or f"ADD COLUMN {column} {spelled}" in ddl
