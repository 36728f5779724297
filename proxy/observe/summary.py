"""Summaries of a time window of records: per model, backend, client and session.

What GET /analytics and `driftgate stats` show, and what other parts (the spend guard,
`driftgate top`) can read: `summarise_window(conn, since, until)` returns a `Summary`.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from driftgate.proxy.endpoints import COUNTING
from driftgate.proxy.errors import DriftgateError
from driftgate.proxy.observe.usage_db import REFUSALS_LISTED, refusal_doc

CLIENT_GONE = 499
SESSION_LIMIT = 50  # sessions listed (the busiest); `sessions` counts them all
_WINDOW = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*")
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "": 60.0}
_COLUMNS = ("model, backend, client, session, endpoint, status, input_tokens, output_tokens, "
            "cache_read_tokens, cache_write_tokens, reasoning_tokens, latency_ms, ttfb_ms, "
            "cost_usd, outcome, reason, ts")  # fmt: skip


class BadWindow(DriftgateError):
    """A window that is not a number with an optional unit (s, m, h, d)."""


def parse_window(text: str) -> float:
    """Seconds in a window such as "60m", "24h", "7d", "90s" (a bare number is minutes)."""
    match = _WINDOW.fullmatch(text or "")
    if not match or float(match.group(1)) <= 0:
        raise BadWindow(
            f"window must be a positive number with s, m, h or d, e.g. 60m; got {text!r}"
        )
    return float(match.group(1)) * _UNIT[match.group(2)]


@dataclass
class Group:
    """Totals for one model, backend, client, session (or all of them)."""

    key: str
    requests: int = 0  # completions (count_tokens calls and refused requests are counted apart)
    errors: int = 0  # answered >= 400 (a client that hung up first is not an error)
    count_tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0  # answered requests with no known price: cost_usd is a lower bound
    error_rate: float = 0.0
    p50_latency_ms: float | None = None
    p95_latency_ms: float | None = None
    p50_ttfb_ms: float | None = None
    p95_ttfb_ms: float | None = None
    cost_per_hour: float = 0.0  # burn rate: cost over the window, per hour
    tokens_per_hour: float = 0.0
    refused: int = (
        0  # refused by the gateway without forwarding (the spend guard): no cost, no time
    )
    _latency: list[float] = field(default_factory=list, repr=False)
    _ttfb: list[float] = field(default_factory=list, repr=False)

    def add(self, row: tuple[Any, ...]) -> None:
        """Count one row (in _COLUMNS order)."""
        endpoint, status = row[4], row[5]
        if row[14] is not None:  # refused before any upstream was asked
            self.refused += 1
            return
        if endpoint in COUNTING:
            self.count_tokens += 1
            return
        self.requests += 1
        if status >= 400 and status != CLIENT_GONE:
            self.errors += 1
        self.input_tokens += row[6]
        self.output_tokens += row[7]
        self.cache_read_tokens += row[8]
        self.cache_write_tokens += row[9]
        self.reasoning_tokens += row[10] or 0
        self._latency.append(row[11])
        if row[12] is not None:
            self._ttfb.append(row[12])
        if row[13] is not None:
            self.cost_usd += row[13]
        elif status < 400:
            self.unpriced += 1

    def finish(self, hours: float) -> Group:
        """Compute rates and percentiles once every row is in."""
        self.error_rate = round(self.errors / self.requests, 4) if self.requests else 0.0
        self.p50_latency_ms, self.p95_latency_ms = _percentiles(self._latency)
        self.p50_ttfb_ms, self.p95_ttfb_ms = _percentiles(self._ttfb)
        tokens = self.input_tokens + self.output_tokens + self.cache_read_tokens
        tokens += self.cache_write_tokens
        self.cost_per_hour = self.cost_usd / hours
        self.tokens_per_hour = tokens / hours
        self._latency, self._ttfb = [], []
        return self

    def as_json(self) -> dict[str, Any]:
        """The group as a JSON object."""
        doc = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        for key in ("cost_usd", "cost_per_hour"):
            doc[key] = round(doc[key], 6)
        doc["tokens_per_hour"] = round(doc["tokens_per_hour"], 1)
        return doc


@dataclass(frozen=True)
class Summary:
    """A window's totals, overall and per model, backend, client and session."""

    since: float
    until: float
    total: Group
    models: list[Group]
    backends: list[Group]
    clients: list[Group]
    sessions: list[Group]
    session_count: int
    refusals: list[dict[str, Any]] = field(default_factory=list)  # why requests were refused

    def as_json(self) -> dict[str, Any]:
        """What GET /analytics answers."""
        return {
            "since": self.since,
            "until": self.until,
            "window_seconds": self.until - self.since,
            "total": self.total.as_json(),
            "models": [g.as_json() for g in self.models],
            "backends": [g.as_json() for g in self.backends],
            "clients": [g.as_json() for g in self.clients],
            "sessions": [g.as_json() for g in self.sessions],
            "session_count": self.session_count,
            "refusals": self.refusals,
        }


def summarise_window(conn: sqlite3.Connection, since: float, until: float) -> Summary:
    """Totals of the records with since <= ts <= until."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM usage WHERE ts >= ? AND ts <= ?", (since, until)
    ).fetchall()
    return summarise_rows(rows, since, until)


def summarise_rows(rows: Iterable[tuple[Any, ...]], since: float, until: float) -> Summary:
    """Totals of rows in _COLUMNS order."""
    total = Group("total")
    dims: list[dict[str, Group]] = [{}, {}, {}, {}]
    refused: dict[tuple[str, str | None, str], list[Any]] = {}
    for row in rows:
        total.add(row)
        if row[14] is not None:
            seen = refused.get((row[14], row[15], row[1]))
            if seen is None:
                refused[(row[14], row[15], row[1])] = [1, row[16], row[16]]
            else:
                seen[0] += 1
                seen[1], seen[2] = min(seen[1], row[16]), max(seen[2], row[16])
        for i, groups in enumerate(dims):
            key = row[i]
            if key is None:
                continue
            group = groups.get(key)
            if group is None:
                group = groups[key] = Group(key)
            group.add(row)
    hours = max(until - since, 1.0) / 3600.0
    models, backends, clients, sessions = (
        sorted((g.finish(hours) for g in groups.values()), key=_busiest) for groups in dims
    )
    return Summary(
        since,
        until,
        total.finish(hours),
        models,
        backends,
        clients,
        sessions[:SESSION_LIMIT],
        len(sessions),
        _refusals(refused),
    )


def _refusals(seen: dict[tuple[str, str | None, str], list[Any]]) -> list[dict[str, Any]]:
    ordered = sorted(seen.items(), key=lambda kv: (-kv[1][0], -kv[1][2]))[:REFUSALS_LISTED]
    return [refusal_doc(*key, *counts) for key, counts in ordered]


def _busiest(group: Group) -> tuple[float, int, str]:
    return (-group.cost_usd, -(group.requests + group.count_tokens), group.key)


def _percentiles(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    values.sort()
    return round(_rank(values, 0.50), 1), round(_rank(values, 0.95), 1)


def _rank(ordered: list[float], q: float) -> float:
    """The nearest-rank percentile."""
    index = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[index]
