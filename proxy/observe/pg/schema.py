"""The PostgreSQL analytics schema: versioned migrations and the daily partitions.

`driftgate_requests` holds one row per request (RequestRecord's fields, `ts` a timestamptz);
`driftgate_minutes` holds per-minute totals per model, backend, client and session, and
`driftgate_refusals` per-minute counts of refused requests per backend and reason: those are all
that /analytics, `driftgate stats` and `driftgate usage` read. All are partitioned by day, so
retention drops whole partitions instead of deleting rows. Migrations are applied at start-up in
one transaction under an advisory lock: two gateways starting together apply each version once.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from driftgate.proxy.observe.pg.minutes import HIST_SLOTS

# pg_advisory_xact_lock keys: "dg-schema" and "dg-parts" as numbers, so nothing else collides.
MIGRATE_LOCK = int.from_bytes(b"dg-schem", "big") >> 1
PARTITION_LOCK = int.from_bytes(b"dg-parts", "big") >> 1
VERSIONS = "driftgate_schema_migrations"
PARTITIONED = ("driftgate_requests", "driftgate_minutes", "driftgate_refusals")
DAYS_AHEAD = 2  # partitions made for today and the next two days
_DAY = re.compile(r"_(\d{8})$")

# Append-only: (version, what it does, SQL). A released entry is never edited.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "requests partitioned by day; per-minute aggregates with latency and TTFB histograms",
        f"""
        CREATE TABLE driftgate_requests (
            ts timestamptz NOT NULL, backend text NOT NULL, model text NOT NULL,
            client_dialect text NOT NULL, upstream_dialect text NOT NULL, endpoint text NOT NULL,
            status integer NOT NULL, stream boolean NOT NULL,
            input_tokens bigint NOT NULL, output_tokens bigint NOT NULL,
            cache_read_tokens bigint NOT NULL, cache_write_tokens bigint NOT NULL,
            latency_ms double precision NOT NULL, ttfb_ms double precision, session text,
            cost_usd double precision, request_id text NOT NULL, client text NOT NULL,
            client_version text, model_requested text NOT NULL, reasoning_tokens bigint NOT NULL,
            rl_requests_limit bigint, rl_requests_remaining bigint, rl_tokens_limit bigint,
            rl_tokens_remaining bigint, rl_reset_s double precision,
            retry_after_s double precision, ratelimit text
        ) PARTITION BY RANGE (ts);
        CREATE INDEX driftgate_requests_ts ON driftgate_requests (ts);

        CREATE TABLE driftgate_minutes (
            minute timestamptz NOT NULL, model text NOT NULL, backend text NOT NULL,
            client text NOT NULL, session text NOT NULL,
            requests bigint NOT NULL, count_tokens bigint NOT NULL,
            errors bigint NOT NULL, failed bigint NOT NULL,
            input_tokens bigint NOT NULL, output_tokens bigint NOT NULL,
            cache_read_tokens bigint NOT NULL, cache_write_tokens bigint NOT NULL,
            reasoning_tokens bigint NOT NULL,
            cost_usd double precision NOT NULL, unpriced bigint NOT NULL,
            latency_sum_ms double precision NOT NULL, latency_hist bigint[] NOT NULL,
            ttfb_count bigint NOT NULL, ttfb_sum_ms double precision NOT NULL,
            ttfb_hist bigint[] NOT NULL,
            PRIMARY KEY (minute, model, backend, client, session),
            CHECK (cardinality(latency_hist) = {HIST_SLOTS} AND cardinality(ttfb_hist) = {HIST_SLOTS})
        ) PARTITION BY RANGE (minute);

        -- Histograms add slot by slot: in the upsert and as an aggregate over a window.
        CREATE FUNCTION driftgate_hist_add(a bigint[], b bigint[]) RETURNS bigint[]
            LANGUAGE sql IMMUTABLE PARALLEL SAFE
            AS $$ SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a
                  ELSE ARRAY(SELECT x + y FROM unnest(a, b) AS t(x, y)) END $$;
        CREATE AGGREGATE driftgate_hist_sum(bigint[]) (
            SFUNC = driftgate_hist_add, STYPE = bigint[], PARALLEL = SAFE
        );
        """,
    ),
    (
        2,
        "requests the gateway refused without forwarding (the spend guard): outcome and reason "
        "on each request, a refused count per minute, per-minute totals per reason",
        """
        ALTER TABLE driftgate_requests ADD COLUMN outcome text, ADD COLUMN reason text;
        ALTER TABLE driftgate_minutes ADD COLUMN refused bigint NOT NULL DEFAULT 0;
        CREATE TABLE driftgate_refusals (
            minute timestamptz NOT NULL, backend text NOT NULL, outcome text NOT NULL,
            reason text NOT NULL, requests bigint NOT NULL,
            PRIMARY KEY (minute, backend, outcome, reason)
        ) PARTITION BY RANGE (minute);
        """,
    ),
)


# driftgate_requests' column types in RequestRecord's field order, for binary COPY (which
# sends each value in the column's own binary form: ~2.3 us a record, against ~5.3 as text).
REQUEST_TYPES: tuple[str, ...] = (
    "timestamptz", "text", "text", "text", "text", "text", "int4", "bool",
    "int8", "int8", "int8", "int8", "float8", "float8", "text", "float8",
    "text", "text", "text", "text", "int8", "int8", "int8", "int8", "int8", "float8", "float8",
    "text", "text", "text",
)  # fmt: skip


class SchemaTooNew(Exception):
    """The database was migrated by a newer driftgate."""


async def migrate(conn: Any) -> list[int]:
    """Apply the missing migrations under the advisory lock; the versions applied (maybe none)."""
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {VERSIONS} (version integer PRIMARY KEY, "
            "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute(f"SELECT coalesce(max(version), 0) FROM {VERSIONS}")
        row = await cur.fetchone()
        current = int(row[0]) if row else 0
        if current > len(MIGRATIONS):
            raise SchemaTooNew(
                f"the analytics database is at schema {current}, newer than this driftgate "
                f"knows ({len(MIGRATIONS)}); upgrade driftgate or point database_url elsewhere"
            )
        for version, description, sql in MIGRATIONS[current:]:
            await conn.execute(sql)
            await conn.execute(
                f"INSERT INTO {VERSIONS} (version, description) VALUES (%s, %s)",
                (version, description),
            )
            applied.append(version)
    return applied


def day_of(ts: float) -> dt.date:
    """The UTC day a Unix time falls in (the partition its rows go to)."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).date()


def partition_name(table: str, day: dt.date) -> str:
    """driftgate_requests_20261130"""
    return f"{table}_{day:%Y%m%d}"


async def ensure_partitions(conn: Any, days: set[dt.date]) -> None:
    """Create the partitions of both tables for `days` that do not exist yet."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
        for day in sorted(days):
            start = dt.datetime.combine(day, dt.time(), dt.UTC)
            end = start + dt.timedelta(days=1)
            for table in PARTITIONED:
                # DDL takes no parameters: the bounds are ISO strings made here, never input.
                await conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {partition_name(table, day)} PARTITION OF "
                    f"{table} FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
                )


def days_ahead(now: float) -> set[dt.date]:
    """Today and the DAYS_AHEAD days after it (UTC)."""
    today = day_of(now)
    return {today + dt.timedelta(days=n) for n in range(DAYS_AHEAD + 1)}


async def partitions(conn: Any) -> dict[str, list[tuple[str, dt.date]]]:
    """Each partitioned table's partitions as (name, day), oldest first."""
    cur = await conn.execute(
        "SELECT parent.relname, child.relname FROM pg_inherits "
        "JOIN pg_class parent ON parent.oid = pg_inherits.inhparent "
        "JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
        "JOIN pg_namespace ns ON ns.oid = child.relnamespace "
        "WHERE parent.relname = ANY(%s) AND ns.nspname = current_schema()",
        (list(PARTITIONED),),
    )
    found: dict[str, list[tuple[str, dt.date]]] = {t: [] for t in PARTITIONED}
    for parent, child in await cur.fetchall():
        match = _DAY.search(child)
        if match:
            day = dt.datetime.strptime(match.group(1), "%Y%m%d").date()
            found[parent].append((child, day))
    return {t: sorted(found[t], key=lambda p: p[1]) for t in found}


async def drop_older(conn: Any, cutoff: float) -> list[str]:
    """Drop whole partitions whose day ended at or before `cutoff` (Unix time); their names."""
    last_day = day_of(cutoff) - dt.timedelta(days=1)  # a day is gone once it ended before cutoff
    dropped: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
        for table_parts in (await partitions(conn)).values():
            for name, day in table_parts:
                if day <= last_day:
                    await conn.execute(f"DROP TABLE IF EXISTS {name}")
                    dropped.append(name)
    return dropped
