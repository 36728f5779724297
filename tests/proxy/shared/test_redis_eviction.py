"""What the gateway says of a Redis whose maxmemory policy may evict the guard's keys."""

from __future__ import annotations

import pytest

from driftgate.proxy.shared.redis_eviction import eviction_risk


@pytest.mark.parametrize(
    ("memory", "said"),
    [
        ({"maxmemory": 0, "maxmemory_policy": "noeviction"}, None),
        ({"maxmemory": 1 << 30, "maxmemory_policy": "noeviction"}, None),
        ({"maxmemory": 0, "maxmemory_policy": "allkeys-lru"}, None),  # no limit: never full
        ({}, None),  # INFO refused: nothing known, nothing said
        (
            {"maxmemory": 100 << 20, "maxmemory_policy": "allkeys-lru"},
            "Redis evicts any key when it reaches maxmemory 100 MB (maxmemory-policy allkeys-lru)",
        ),
        (
            {"maxmemory": 3 << 29, "maxmemory_policy": "volatile-ttl"},
            "Redis evicts keys with an expiry when it reaches maxmemory 1.5 GB "
            "(maxmemory-policy volatile-ttl)",
        ),
        (
            {"maxmemory": "512", "maxmemory_policy": "allkeys-random"},
            "Redis evicts any key when it reaches maxmemory 512 bytes",
        ),
    ],
)
def test_only_a_limit_with_an_evicting_policy_is_a_risk(
    memory: dict[str, object], said: str | None
) -> None:
    found = eviction_risk(memory)
    if said is None:
        assert found is None
    else:
        assert found is not None and found.startswith(said)
        assert found.endswith("spend forgotten and budgets exceeded")
