"""Per-minute aggregates of a batch of records, and percentiles read back from their histograms.

Latency and TTFB go into fixed buckets, ten per decade from 1 ms to ~10 min, so a p50 or p95
over any window comes from summed histograms (within a bucket's width, ~26%, reported at the
bucket's geometric middle) and never from raw rows. The bounds are part of the schema: changing
them needs a migration.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Any

from driftgate.proxy.endpoints import COUNTING
from driftgate.proxy.observe.records import RequestRecord

CLIENT_GONE = 499
BOUNDS_MS: tuple[float, ...] = tuple(round(10 ** (i / 10), 3) for i in range(59))  # 1 ms .. ~631 s
HIST_SLOTS = len(BOUNDS_MS) + 1  # the last slot is beyond the last bound
KEY = ("minute", "model", "backend", "client", "session")
SUMS = (
    "requests", "count_tokens", "errors", "failed", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "cost_usd", "unpriced",
    "latency_sum_ms", "ttfb_count", "ttfb_sum_ms", "refused",
)  # fmt: skip
HISTS = ("latency_hist", "ttfb_hist")
COLUMNS = KEY + SUMS + HISTS
_LATENCY_SUM, _TTFB_COUNT = SUMS.index("latency_sum_ms"), SUMS.index("ttfb_count")
_REFUSED = SUMS.index("refused")
REFUSAL_KEY = ("minute", "backend", "outcome", "reason")
_UTC = dt.UTC


def slot(ms: float) -> int:
    """The histogram slot of a duration in milliseconds."""
    return bisect_left(BOUNDS_MS, ms)


def aggregate(records: Iterable[RequestRecord]) -> list[tuple[Any, ...]]:
    """One row per (minute, model, backend, client, session) in COLUMNS order, sorted by key.

    Sorted so that two gateways upserting the same rows lock them in the same order (no deadlock).
    """
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for r in records:
        key = (int(r.ts // 60) * 60, r.model, r.backend, r.client, r.session or "")
        acc = groups.get(key)
        if acc is None:
            acc = groups[key] = [0] * len(SUMS) + [[0] * HIST_SLOTS, [0] * HIST_SLOTS]
            acc[SUMS.index("cost_usd")] = 0.0
        if r.outcome is not None:  # refused before any upstream was asked: counted apart
            acc[_REFUSED] += 1
            continue
        if r.endpoint in COUNTING:
            acc[1] += 1
            acc[3] += r.status >= 400
            continue
        acc[0] += 1
        acc[2] += r.status >= 400 and r.status != CLIENT_GONE
        acc[3] += r.status >= 400
        acc[4] += r.input_tokens
        acc[5] += r.output_tokens
        acc[6] += r.cache_read_tokens
        acc[7] += r.cache_write_tokens
        acc[8] += r.reasoning_tokens or 0
        if r.cost_usd is not None:
            acc[9] += r.cost_usd
        elif r.status < 400:
            acc[10] += 1
        acc[_LATENCY_SUM] += r.latency_ms
        acc[-2][slot(r.latency_ms)] += 1
        if r.ttfb_ms is not None:
            acc[_TTFB_COUNT] += 1
            acc[_TTFB_COUNT + 1] += r.ttfb_ms
            acc[-1][slot(r.ttfb_ms)] += 1
    return [
        (dt.datetime.fromtimestamp(key[0], _UTC), *key[1:], *groups[key]) for key in sorted(groups)
    ]


def refusals(records: Iterable[RequestRecord]) -> list[tuple[Any, ...]]:
    """Refused requests per (minute, backend, outcome, reason), with their count, sorted by key."""
    counts: dict[tuple[Any, ...], int] = {}
    for r in records:
        if r.outcome is not None:
            key = (int(r.ts // 60) * 60, r.backend, r.outcome, r.reason or "")
            counts[key] = counts.get(key, 0) + 1
    return [
        (dt.datetime.fromtimestamp(key[0], _UTC), *key[1:], counts[key]) for key in sorted(counts)
    ]


def merge_refusals(rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Refusal rows of several batches with equal keys added together, sorted by key."""
    merged: dict[tuple[Any, ...], int] = {}
    for row in rows:
        merged[row[:-1]] = merged.get(row[:-1], 0) + row[-1]
    return [(*key, merged[key]) for key in sorted(merged)]


def merge(rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows of several batches with equal keys added together (one upsert per key), sorted."""
    merged: dict[tuple[Any, ...], list[Any]] = {}
    width = len(KEY)
    for row in rows:
        key = row[:width]
        acc = merged.get(key)
        if acc is None:
            merged[key] = [*row[width:-2], list(row[-2]), list(row[-1])]
            continue
        for i, value in enumerate(row[width:-2]):
            acc[i] += value
        for hist, add in ((acc[-2], row[-2]), (acc[-1], row[-1])):
            for i, n in enumerate(add):
                hist[i] += n
    return [(*key, *merged[key]) for key in sorted(merged)]


def percentiles(hist: Sequence[int] | None) -> tuple[float | None, float | None]:
    """(p50, p95) in ms from a histogram's slots (nearest rank, the slot's geometric middle)."""
    if not hist:
        return None, None
    total = sum(hist)
    if not total:
        return None, None
    return _rank(hist, total, 0.50), _rank(hist, total, 0.95)


def _rank(hist: Sequence[int], total: int, q: float) -> float:
    wanted = max(1, math.ceil(q * total))
    running = 0
    for i, count in enumerate(hist):
        running += count
        if running >= wanted:
            return round(_middle(i), 1)
    return round(_middle(len(hist) - 1), 1)


def _middle(i: int) -> float:
    if i == 0:
        return BOUNDS_MS[0]
    if i >= len(BOUNDS_MS):
        return BOUNDS_MS[-1]
    return math.sqrt(BOUNDS_MS[i - 1] * BOUNDS_MS[i])
