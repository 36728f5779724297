"""Connections to the analytics database, and what a refusal looks like."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg

from driftgate.proxy.errors import ConfigError
from driftgate.proxy.observe.pg.url import reason, redact_url

T = TypeVar("T")
CONNECT_TIMEOUT = 5
# What libpq says when the server answered and refused us (no SQLSTATE comes with these).
_REFUSALS = ("password authentication failed", "does not exist", "no pg_hba.conf entry")


class DatabaseRefused(Exception):
    """The database answered but refuses us: a wrong password, user or database name."""


async def connect(url: str, timeout: float = CONNECT_TIMEOUT) -> Any:
    """An autocommit AsyncConnection; DatabaseRefused when the server refuses the credentials."""
    try:
        return await psycopg.AsyncConnection.connect(
            url, autocommit=True, connect_timeout=max(1, int(timeout)), application_name="driftgate"
        )
    except psycopg.OperationalError as exc:
        if any(sign in str(exc) for sign in _REFUSALS):
            raise DatabaseRefused(reason(exc)) from None
        raise


def read_once(url: str, read: Callable[[Any], Awaitable[T]], timeout: float = 5.0) -> T:
    """For the CLI: connect, run `read(connection)`, close; a ConfigError a user can act on."""

    async def run() -> T:
        conn = await connect(url, timeout)
        try:
            return await read(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(run())
    except (DatabaseRefused, psycopg.Error, OSError) as exc:
        raise ConfigError(
            f"cannot read the analytics database {redact_url(url)}: {reason(exc)} "
            "([analytics] database_url; `driftgate doctor` checks it)"
        ) from None
