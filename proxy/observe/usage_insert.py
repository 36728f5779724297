"""The usage table's INSERT, shaped by the rows: NULL columns are not bound, rows go many a statement.

sqlite3 binds a None through its adaptation lookup (a type check, a dict lookup and two
attribute lookups), several times what an int or a str costs, and most records leave half of
their nullable columns (rate limits, refusal, version) empty. Left out of the statement, such a
column takes its default, NULL: the same row. Consecutive rows that leave out the same columns
go in one multi-row `INSERT ... VALUES (...), (...)` (at most CHUNK rows a statement), so rows
are still inserted in their order (ids follow it). A statement per row (`executemany`) cost
about a fifth more per row: each is reset, bound and stepped on its own.
"""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Callable, Sequence
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
_NONE = type(None)
PLANS_KEPT = 256  # column sets remembered, each with its statements
# Rows a statement: every column of 32 rows is 32 * 31 parameters, under the 999 that SQLite
# before 3.32 allows a statement. Shorter runs go in statements of 16, 8, 4, 2 and 1 rows.
CHUNK = 32
_SIZES = (CHUNK, 16, 8, 4, 2, 1)


class _Plan:
    """One set of columns left out: which values a row binds, and a statement per row count."""

    __slots__ = ("names", "pick", "statements", "width")

    def __init__(self, kept: list[int]) -> None:
        self.width = len(kept)
        self.names = ", ".join(COLUMNS[i] for i in kept)
        # Every NOT NULL column is kept: several indices, so the getter gives a tuple.
        self.pick: Callable[[Sequence[Any]], tuple[Any, ...]] = operator.itemgetter(*kept)
        self.statements: dict[int, str] = {}

    def sql(self, rows: int) -> str:
        sql = self.statements.get(rows)
        if sql is None:
            one = f"({', '.join('?' * self.width)})"
            sql = self.statements[rows] = (
                f"INSERT INTO usage ({self.names}) VALUES {', '.join([one] * rows)}"
            )
        return sql


class UsageInsert:
    """Inserts records into the usage table, one statement per set of NULL columns and run."""

    def __init__(self) -> None:
        self._plans: dict[tuple[type, ...], _Plan] = {}

    def insert(self, conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> None:
        """Insert `rows` (records, in COLUMNS order) in order, in the caller's transaction."""
        last: tuple[type, ...] | None = None
        run: list[Sequence[Any]] = []
        plan: _Plan | None = None
        for row in rows:
            # The nullable columns' types say which are NULL: a tuple of them is cheaper to make
            # than a bytes of `is None` tests through a partial (bench/README.md).
            kinds = tuple(map(type, _nullable_of(row)))
            if kinds != last:
                if plan is not None:
                    _write(conn, plan, run)
                    run = []
                plan = self._plan(kinds)
                last = kinds
            run.append(row)
        if plan is not None:
            _write(conn, plan, run)

    def _plan(self, kinds: tuple[type, ...]) -> _Plan:
        plan = self._plans.get(kinds)
        if plan is None:
            left_out = {_NULLABLE_AT[i] for i, kind in enumerate(kinds) if kind is _NONE}
            if len(self._plans) >= PLANS_KEPT:
                self._plans.clear()
            plan = self._plans[kinds] = _Plan([i for i in range(len(COLUMNS)) if i not in left_out])
        return plan


def _write(conn: sqlite3.Connection, plan: _Plan, run: list[Sequence[Any]]) -> None:
    """`run`'s rows in order, CHUNK a statement, then the rest in fewer and fewer."""
    pick = plan.pick
    start, total = 0, len(run)
    for size in _SIZES:
        while total - start >= size:
            values: list[Any] = []
            for row in run[start : start + size]:
                values += pick(row)
            conn.execute(plan.sql(size), values)
            start += size
