"""PostgreSQL fixtures: one initdb per test session (per xdist worker), a database per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.fakes.postgres_server import PgCluster, PgServer, available, init_cluster

_names = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """An initdb'd cluster in a scratch directory; every server started from it stops after."""
    if not available():
        pytest.skip("needs PostgreSQL (postgresql, listed in .ci/debian-packages)")
    cluster = init_cluster()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def pg_server(pg_cluster: PgCluster) -> PgServer:
    """One PostgreSQL server shared by the session's tests (each test takes its own database)."""
    return pg_cluster.server()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty database on the shared server: its postgresql:// URL (with a password)."""
    if not pg_server.running:  # a test that stopped it must not take the others down
        pg_server.start()
    return pg_server.create_database(f"driftgate_test_{next(_names)}")
