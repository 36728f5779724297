"""A real redis-server for the Redis guard store's tests (skipped without one outside CI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.redis_server import RedisServer, running_redis


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """redis-server on a free loopback port, a scratch dir, `--save ''`; stopped after the test."""
    with running_redis(tmp_path / "redis") as server:
        yield server


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for a module's tests, each under its own key prefix."""
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server
