"""Connections to the analytics database, what a refusal looks like, and a bound on each answer.

A PostgreSQL that refuses is noticed at once; one that hangs (the host is frozen, a network path
silently drops packets, something accepts TCP and never answers) would leave an await pending for
ever. `connect` stops waiting after its timeout (libpq's connect_timeout, 2 s at least), and
`bounded` gives every statement or transaction `timeout` seconds: past that the connection's
socket is shut, so psycopg's pending read fails at once and the caller sees `DatabaseHung`.
Shutting the socket, rather than cancelling the task, sends no cancel request to a server that
would not answer it either, and leaves the connection plainly broken.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg

from driftgate.proxy.errors import ConfigError
from driftgate.proxy.observe.pg.url import reason, redact_url

T = TypeVar("T")
CONNECT_TIMEOUT = 5
TIMEOUT = (
    10.0  # seconds a connection or a statement may take ([analytics] database_timeout_seconds)
)
# What libpq says when the server answered and refused us (no SQLSTATE comes with these).
_REFUSALS = ("password authentication failed", "does not exist", "no pg_hba.conf entry")


class DatabaseRefused(Exception):
    """The database answered but refuses us: a wrong password, user or database name."""


class DatabaseHung(psycopg.OperationalError):
    """The database took longer than the timeout to answer: its connection was shut."""


async def bounded(conn: Any, work: Awaitable[T], timeout: float) -> T:
    """`work` (statements on `conn`); DatabaseHung if it has not ended within `timeout` s."""
    cut = False

    def shut() -> None:
        nonlocal cut
        cut = True
        shut_socket(conn)

    handle = asyncio.get_running_loop().call_later(timeout, shut)
    try:
        return await work
    except Exception as exc:
        if cut:
            raise DatabaseHung(f"no answer within {timeout:g} s") from exc
        raise
    finally:
        handle.cancel()


def shut_socket(conn: Any) -> None:
    """Shut the connection's socket both ways: whatever waits on it fails now (any thread)."""
    with contextlib.suppress(Exception):  # already closed: nothing waits on it
        fd = os.dup(conn.pgconn.socket)
        with socket.socket(fileno=fd) as sock:
            sock.shutdown(socket.SHUT_RDWR)


async def connect(url: str, timeout: float = CONNECT_TIMEOUT) -> Any:
    """An autocommit AsyncConnection; DatabaseRefused when the server refuses the credentials.

    libpq counts connect_timeout in whole seconds, 2 at least: `timeout` is rounded up to that.
    """
    try:
        return await psycopg.AsyncConnection.connect(
            url,
            autocommit=True,
            connect_timeout=max(2, math.ceil(timeout)),
            application_name="driftgate",
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
            return await bounded(conn, read(conn), timeout)
        finally:
            await conn.close()

    try:
        return asyncio.run(run())
    except (DatabaseRefused, psycopg.Error, OSError) as exc:
        raise ConfigError(
            f"cannot read the analytics database {redact_url(url)}: {reason(exc)} "
            "([analytics] database_url; `driftgate doctor` checks it)"
        ) from None
