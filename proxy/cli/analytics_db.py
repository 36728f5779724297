"""The CLI's reads of PostgreSQL analytics (`driftgate stats`, `driftgate usage`, doctor)."""

from __future__ import annotations

from typing import Any

from driftgate.proxy.errors import ConfigError
from driftgate.proxy.observe.pg.url import redact_url
from driftgate.proxy.observe.summary import Summary


class PgReads:
    """Reads of the aggregates at one URL; psycopg is imported only when one is made."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.shown = redact_url(url)

    def window(self, since: float, until: float) -> Summary:
        """What GET /analytics?window= shows, from every gateway's minutes."""
        from driftgate.proxy.observe.pg.connect import read_once
        from driftgate.proxy.observe.pg.reader import window_summary

        return read_once(self.url, lambda conn: window_summary(conn, since, until))

    def usage(self, since: float | None) -> list[dict[str, Any]]:
        """Per backend and model totals since `since` (all when None)."""
        from driftgate.proxy.observe.pg.connect import read_once
        from driftgate.proxy.observe.pg.reader import usage_rows

        return read_once(self.url, lambda conn: usage_rows(conn, since))

    def refusals(self, since: float | None, until: float) -> list[dict[str, Any]]:
        """Refused requests per outcome, reason and backend since `since` (all when None)."""
        from driftgate.proxy.observe.pg.connect import read_once
        from driftgate.proxy.observe.pg.reader import refusal_rows

        return read_once(self.url, lambda conn: refusal_rows(conn, since, until))

    def facts(self) -> dict[str, Any]:
        """Schema version, partitions and the last hour's requests (for doctor)."""
        from driftgate.proxy.observe.pg.connect import read_once
        from driftgate.proxy.observe.pg.reader import facts

        return read_once(self.url, facts)


def pg_reads(url: str) -> PgReads:
    """PgReads for `url`; a ConfigError naming the install command when psycopg is missing."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise ConfigError(
            "[analytics] database_url is set but psycopg is not installed: "
            "pip install 'driftgate[postgres]'"
        ) from None
    return PgReads(url)
