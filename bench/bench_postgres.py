"""The bench's PostgreSQL: the tests' helper (tests/fakes/postgres_server.py), started once.

Durable settings (fsync on, PostgreSQL's defaults), unlike the tests' scratch servers: the row
measures what a real deployment's writer costs the gateway.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from tests.fakes.postgres_server import PgCluster, PgServer, available, children, init_cluster


@dataclass
class BenchPostgres:
    """A running server with one database for the gateway row."""

    cluster: PgCluster
    url: str
    server: PgServer

    def pin(self, cpu: int) -> None:
        """Run the server (postmaster, its workers and every backend it forks later) on `cpu`.

        The bench pins it beside the upstream and wrk, as it does Redis: in a deployment the
        database runs on its own host, not on the gateway's core.
        """
        postmaster = int((self.server.data / "postmaster.pid").read_text().split()[0])
        for pid in (postmaster, *children(postmaster)):
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(pid, {cpu})

    def database(self, name: str) -> str:
        """Another database on the server (the baseline build's row writes apart: its schema
        version may differ)."""
        return self.server.create_database(name)

    def close(self) -> int:
        """How many records the gateway wrote; then stop the server and remove its files."""
        try:
            with psycopg.connect(self.url) as conn:
                row = conn.execute("SELECT count(*) FROM driftgate_requests").fetchone()
            return int(row[0]) if row else 0
        except psycopg.Error:
            return 0
        finally:
            self.cluster.close()


def start() -> BenchPostgres:
    """initdb, start on a free loopback port, create the database."""
    if not available():
        raise RuntimeError("needs PostgreSQL: apt-get install -y postgresql")
    cluster = init_cluster()
    try:
        server = cluster.server(options=())
        return BenchPostgres(cluster, server.create_database("driftgate_bench"), server)
    except BaseException:
        cluster.close()
        raise
