"""Whether a Redis may evict the spend guard's keys: its `maxmemory` and `maxmemory-policy`.

The guard's state (each budget's window of settled spend, the reservations in flight, the halt)
is only correct while Redis keeps every key until the guard deletes it or lets it expire. With a
`maxmemory` set and any policy but `noeviction`, Redis deletes keys of its choosing when it is
full (`volatile-*` policies pick among keys with an expiry, which the windows have): spend is
forgotten and budgets are exceeded without a word. Read from `INFO memory`, which a user whose
ACL forbids `CONFIG GET` may still run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SAFE_POLICY = "noeviction"
FIX = (
    "set maxmemory-policy noeviction on that Redis (CONFIG SET maxmemory-policy noeviction, and "
    "in redis.conf so a restart keeps it), or give the guard a Redis that evicts nothing"
)


def eviction_risk(memory: Mapping[str, Any]) -> str | None:
    """A sentence saying what Redis may evict, from its `INFO memory` fields; None when it keeps
    every key (the `noeviction` policy, or no `maxmemory`, which on 64-bit means no limit)."""
    policy = str(memory.get("maxmemory_policy", SAFE_POLICY))
    try:
        limit = int(memory.get("maxmemory", 0) or 0)
    except (TypeError, ValueError):
        limit = 0
    if policy == SAFE_POLICY or limit <= 0:
        return None
    which = "keys with an expiry" if policy.startswith("volatile-") else "any key"
    return (
        f"Redis evicts {which} when it reaches maxmemory {_size(limit)} "
        f"(maxmemory-policy {policy}): the spend guard's windows and reservations can be "
        "evicted, spend forgotten and budgets exceeded"
    )


def _size(count: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.4g} {unit}"
    return f"{count} bytes"
