"""Upstream attempts per backend: totals by outcome (for /metrics) and the recent error rate
(for /health). Every attempt counts, fallbacks included; updated on the event loop, O(1).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

WINDOW = 300.0  # seconds of history behind the recent error rate
_SLOT = 10.0  # seconds per bucket
_SLOTS = int(WINDOW / _SLOT)
DEGRADED_RATE = 0.5  # at or above this recent error rate a backend makes /health "degraded"
DEGRADED_MIN_ATTEMPTS = 5  # ... once it had at least this many attempts in the window

# Kinds of upstream failure: what went wrong, not which exception.
TIMEOUT = "timeout"
CONNECT = "connect"
AUTH = "auth"  # 401/403: every request through this backend will fail
RATE_LIMITED = "rate_limited"  # 429
SERVER = "server"  # 5xx
STREAM = "stream"  # the stream broke or was malformed after it started


def kind_of_status(status: int) -> str | None:
    """The failure kind an upstream status means; None for success and the client's own errors."""
    if status in (401, 403):
        return AUTH
    if status == 429:
        return RATE_LIMITED
    if status >= 500:
        return SERVER
    return None


class UpstreamStats:
    """Counts attempts and failures per backend; a ring of 10 s buckets for the recent rate."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.errors: defaultdict[tuple[str, str], int] = defaultdict(int)  # (backend, kind)
        self.attempts: defaultdict[str, int] = defaultdict(int)
        # backend -> [slot number, attempts, errors] per ring position
        self._ring: dict[str, list[list[int]]] = {}

    def ok(self, backend: str) -> None:
        """An attempt that got an answer which is not the upstream's failure."""
        self.attempts[backend] += 1
        self._bucket(backend)[1] += 1

    def failed(self, backend: str, kind: str) -> None:
        """An attempt that failed (`kind`: timeout, connect, auth, rate_limited, server, stream)."""
        self.attempts[backend] += 1
        self.errors[(backend, kind)] += 1
        bucket = self._bucket(backend)
        bucket[1] += 1
        bucket[2] += 1

    def stream_broke(self, backend: str) -> None:
        """A stream that had started failed: one more error, not one more attempt."""
        self.errors[(backend, STREAM)] += 1
        self._bucket(backend)[2] += 1

    def recent(self, backend: str) -> dict[str, Any]:
        """Attempts, errors and error rate over the last WINDOW seconds."""
        now_slot = int(self._clock() // _SLOT)
        attempts = errors = 0
        for slot, a, e in self._ring.get(backend, ()):
            if now_slot - slot < _SLOTS:
                attempts += a
                errors += e
        rate = min(1.0, errors / attempts) if attempts else 0.0
        return {"attempts": attempts, "errors": errors, "error_rate": round(rate, 3)}

    def degraded(self, backend: str) -> bool:
        """Whether the recent error rate says this backend is failing."""
        recent = self.recent(backend)
        return bool(
            recent["attempts"] >= DEGRADED_MIN_ATTEMPTS and recent["error_rate"] >= DEGRADED_RATE
        )

    def _bucket(self, backend: str) -> list[int]:
        slot = int(self._clock() // _SLOT)
        ring = self._ring.get(backend)
        if ring is None:
            ring = self._ring[backend] = [[-1, 0, 0] for _ in range(_SLOTS)]
        bucket = ring[slot % _SLOTS]
        if bucket[0] != slot:
            bucket[0], bucket[1], bucket[2] = slot, 0, 0
        return bucket
