"""The usage table's INSERT, shaped by the row: columns a record leaves NULL are not bound.

sqlite3 binds a None through its adaptation lookup (a type check, a dict lookup and two
attribute lookups), several times what an int or a str costs, and most records leave half of
their nullable columns (rate limits, refusal, version) empty. Left out of the statement, such a
column takes its default, NULL: the same row. Consecutive rows that leave out the same columns
share one `executemany`, so rows are still inserted in their order (ids follow it).
"""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from driftgate.proxy.observe.records import COLUMNS

# The usage table's columns that are nullable with no default (usage_db.MIGRATIONS): only these
# may be left out. A NOT NULL column is always bound, so a None there still fails as before.
NULLABLE: tuple[str, ...] = (
    "ttfb_ms", "session", "cost_usd", "client_version", "rl_requests_limit",
    "rl_requests_remaining", "rl_tokens_limit", "rl_tokens_remaining", "rl_reset_s",
    "retry_after_s", "ratelimit", "outcome", "reason",
)  # fmt: skip
_NULLABLE_AT = tuple(COLUMNS.index(name) for name in NULLABLE)
_nullable_of = operator.itemgetter(*_NULLABLE_AT)
_is_none = partial(operator.is_, None)
PLANS_KEPT = 256  # statements remembered, one per set of columns left out


class UsageInsert:
    """Inserts records into the usage table, one statement per set of NULL columns."""

    def __init__(self) -> None:
        self._plans: dict[bytes, tuple[str, Callable[[Sequence[Any]], tuple[Any, ...]]]] = {}

    def insert(self, conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> None:
        """Insert `rows` (records, in COLUMNS order) in order, in the caller's transaction."""
        last: bytes | None = None
        values: list[tuple[Any, ...]] = []
        sql = ""
        pick: Callable[[Sequence[Any]], tuple[Any, ...]] = tuple
        for row in rows:
            empty = bytes(map(_is_none, _nullable_of(row)))
            if empty != last:
                if values:
                    conn.executemany(sql, values)
                    values = []
                sql, pick = self._plan(empty)
                last = empty
            values.append(pick(row))
        if values:
            conn.executemany(sql, values)

    def _plan(self, empty: bytes) -> tuple[str, Callable[[Sequence[Any]], tuple[Any, ...]]]:
        plan = self._plans.get(empty)
        if plan is None:
            left_out = {_NULLABLE_AT[i] for i, is_empty in enumerate(empty) if is_empty}
            kept = [i for i in range(len(COLUMNS)) if i not in left_out]
            names = ", ".join(COLUMNS[i] for i in kept)
            sql = f"INSERT INTO usage ({names}) VALUES ({', '.join('?' * len(kept))})"
            if len(self._plans) >= PLANS_KEPT:
                self._plans.clear()
            plan = self._plans[empty] = (sql, operator.itemgetter(*kept))
        return plan
