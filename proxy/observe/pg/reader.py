"""Reads of the per-minute aggregates: what /analytics, `driftgate stats` and `driftgate usage` show.

Every query reads `driftgate_minutes` only, so a window costs the same however many requests it
held, and every gateway writing to the database shows up in any gateway's /analytics. A window is
counted in whole minutes: its first minute is included from its start.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from driftgate.proxy.observe.pg.minutes import percentiles
from driftgate.proxy.observe.summary import SESSION_LIMIT, Group, Summary
from driftgate.proxy.observe.usage_db import REFUSALS_LISTED, refusal_doc

_SUMS = (
    "sum(requests)::bigint, sum(count_tokens)::bigint, sum(errors)::bigint, "
    "sum(input_tokens)::bigint, sum(output_tokens)::bigint, sum(cache_read_tokens)::bigint, "
    "sum(cache_write_tokens)::bigint, sum(reasoning_tokens)::bigint, sum(cost_usd), "
    "sum(unpriced)::bigint, driftgate_hist_sum(latency_hist), driftgate_hist_sum(ttfb_hist), "
    "sum(refused)::bigint"
)
# One scan for the total and the four dimensions; grouping() says which set a row belongs to.
_WINDOW = f"""
    SELECT grouping(model, backend, client, session), model, backend, client, session, {_SUMS}
    FROM driftgate_minutes WHERE minute >= %s AND minute <= %s
    GROUP BY GROUPING SETS ((), (model), (backend), (client), (session))
"""
# grouping() bits: model 8, backend 4, client 2, session 1; a set's bit is 0 for its own column.
_SETS = {15: "total", 7: "models", 11: "backends", 13: "clients", 14: "sessions"}
_USAGE = """
    SELECT backend, model, sum(requests)::bigint, sum(count_tokens)::bigint, sum(failed)::bigint,
      sum(input_tokens)::bigint, sum(output_tokens)::bigint, sum(cache_read_tokens)::bigint,
      sum(cache_write_tokens)::bigint, sum(cost_usd), sum(unpriced)::bigint,
      sum(latency_sum_ms) / nullif(sum(requests), 0), sum(ttfb_sum_ms) / nullif(sum(ttfb_count), 0),
      sum(refused)::bigint
    FROM driftgate_minutes WHERE minute >= %s
    GROUP BY backend, model ORDER BY backend, model
"""
_USAGE_KEYS = (
    "backend", "model", "requests", "count_tokens", "errors", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_write_tokens", "cost_usd", "unpriced", "avg_latency_ms",
    "avg_ttfb_ms", "refused",
)  # fmt: skip
_REFUSALS = """
    SELECT outcome, nullif(reason, ''), backend, sum(requests)::bigint, min(minute), max(minute)
    FROM driftgate_refusals WHERE minute >= %s AND minute <= %s
    GROUP BY outcome, reason, backend ORDER BY 4 DESC, 6 DESC LIMIT %s
"""


def _minute(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(ts // 60) * 60, dt.UTC)


async def window_summary(conn: Any, since: float, until: float) -> Summary:
    """Totals of the minutes from `since`'s minute to `until`, per model, backend, client, session."""
    cur = await conn.execute(_WINDOW, (_minute(since), dt.datetime.fromtimestamp(until, dt.UTC)))
    hours = max(until - since, 1.0) / 3600.0
    sets: dict[str, list[Group]] = {name: [] for name in _SETS.values()}
    for row in await cur.fetchall():
        name = _SETS.get(row[0])
        if name is None:
            continue
        key = "total" if name == "total" else row[{"models": 1, "backends": 2, "clients": 3,
                                                   "sessions": 4}[name]]  # fmt: skip
        if name == "sessions" and not key:
            continue  # requests that named no session
        sets[name].append(_group(str(key), row[5:], hours))
    total = sets["total"][0] if sets["total"] else Group("total").finish(hours)
    refused = await refusal_rows(conn, since, until) if total.refused else []
    ordered = {name: sorted(groups, key=_busiest) for name, groups in sets.items()}
    sessions = ordered["sessions"]
    return Summary(
        since,
        until,
        total,
        ordered["models"],
        ordered["backends"],
        ordered["clients"],
        sessions[:SESSION_LIMIT],
        len(sessions),
        refused,
    )


def _group(key: str, sums: tuple[Any, ...], hours: float) -> Group:
    g = Group(
        key,
        requests=sums[0] or 0,
        count_tokens=sums[1] or 0,
        errors=sums[2] or 0,
        input_tokens=sums[3] or 0,
        output_tokens=sums[4] or 0,
        cache_read_tokens=sums[5] or 0,
        cache_write_tokens=sums[6] or 0,
        reasoning_tokens=sums[7] or 0,
        cost_usd=float(sums[8] or 0.0),
        unpriced=sums[9] or 0,
        refused=sums[12] or 0,
    )
    g.finish(hours)
    g.p50_latency_ms, g.p95_latency_ms = percentiles(sums[10])
    g.p50_ttfb_ms, g.p95_ttfb_ms = percentiles(sums[11])
    return g


def _busiest(group: Group) -> tuple[float, int, str]:
    return (-group.cost_usd, -(group.requests + group.count_tokens), group.key)


async def usage_rows(conn: Any, since: float | None) -> list[dict[str, Any]]:
    """`driftgate usage`: totals per backend and model (errors: every answer >= 400)."""
    start = _minute(since) if since is not None else dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    cur = await conn.execute(_USAGE, (start,))
    rows = []
    for row in await cur.fetchall():
        doc = dict(zip(_USAGE_KEYS, row, strict=True))
        if doc["requests"] and doc["unpriced"] == doc["requests"]:
            doc["cost_usd"] = None  # nothing priced: unknown, as SQLite's SUM of NULLs says
        rows.append(doc)
    return rows


async def refusal_rows(conn: Any, since: float | None, until: float) -> list[dict[str, Any]]:
    """Refused requests per outcome, reason and backend (the most frequent first)."""
    start = _minute(since) if since is not None else dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime.fromtimestamp(until, dt.UTC)
    cur = await conn.execute(_REFUSALS, (start, end, REFUSALS_LISTED))
    return [
        refusal_doc(outcome, reason, backend, n, first.timestamp(), last.timestamp())
        for outcome, reason, backend, n, first, last in await cur.fetchall()
    ]


async def facts(conn: Any) -> dict[str, Any]:
    """What `driftgate doctor` reports: schema version, partitions, the last hour's requests."""
    cur = await conn.execute(
        "SELECT to_regclass('driftgate_schema_migrations') IS NOT NULL, "
        "to_regclass('driftgate_minutes') IS NOT NULL"
    )
    row = await cur.fetchone()
    if not row or not row[0]:
        return {"schema": 0}
    cur = await conn.execute("SELECT coalesce(max(version), 0) FROM driftgate_schema_migrations")
    version = (await cur.fetchone())[0]
    doc: dict[str, Any] = {"schema": int(version)}
    if not row[1]:
        return doc
    cur = await conn.execute(
        "SELECT count(*), min(c.relname) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE p.relname = 'driftgate_requests'"
    )
    parts, oldest = await cur.fetchone()
    if oldest:  # driftgate_requests_20261130 -> 2026-11-30
        day = str(oldest).rsplit("_", 1)[-1]
        oldest = f"{day[:4]}-{day[4:6]}-{day[6:]}"
    cur = await conn.execute(
        "SELECT coalesce(sum(requests + count_tokens), 0)::bigint FROM driftgate_minutes "
        "WHERE minute >= now() - interval '1 hour'"
    )
    doc |= {"partitions": int(parts), "oldest": oldest, "last_hour": int((await cur.fetchone())[0])}
    return doc
