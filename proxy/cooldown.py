"""A failing backend rests for a while before the router tries it again."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from datetime import UTC
from email.utils import parsedate_to_datetime

_SECONDS = re.compile(r"\s*(\d+(?:\.\d+)?)\s*")


class Cooldowns:
    """Per-backend cooldown deadlines on an injectable monotonic clock."""

    def __init__(
        self,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_seconds: float = 3600.0,
    ) -> None:
        self._seconds = seconds
        # An upstream's Retry-After is trusted only up to this cap, so a bad header cannot park a backend for days.
        self._max = max(max_seconds, seconds)
        self._clock = clock
        self._until: dict[str, float] = {}
        self.started: dict[str, int] = {}  # cooldowns started per backend (for /metrics)

    @property
    def seconds(self) -> float:
        """How long a failing backend rests (a reload may change it)."""
        return self._seconds

    @seconds.setter
    def seconds(self, value: float) -> None:
        self._seconds = value
        self._max = max(self._max, value)

    @property
    def anything_cooling(self) -> bool:
        """Whether any backend may be cooling (False: every backend is usable, no clock read)."""
        return bool(self._until)

    def fail(self, backend: str, retry_after: float | None = None) -> None:
        """Cool `backend` for max(retry_after, seconds); a longer cooldown already running is kept."""
        wait = min(max(retry_after or 0.0, self._seconds), self._max)
        until = self._clock() + wait
        previous = self._until.get(backend, -math.inf)
        if previous <= self._clock():
            self.started[backend] = self.started.get(backend, 0) + 1
        if until > previous:
            self._until[backend] = until

    def ok(self, backend: str) -> None:
        """A success clears the cooldown."""
        self._until.pop(backend, None)

    def all_cooling(self) -> dict[str, float]:
        """Seconds left for every backend that is cooling now."""
        return {b: left for b in list(self._until) if (left := self.cooling(b)) > 0}

    def cooling(self, backend: str) -> float:
        """Seconds left before `backend` is usable again; 0.0 when it is usable now."""
        until = self._until.get(backend)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._until[backend]
            return 0.0
        return left


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP-date; None when absent or unreadable."""
    if not value:
        return None
    match = _SECONDS.fullmatch(value)
    if match:
        return float(match.group(1))
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # parsedate gives a naive datetime for "-0000"; HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now())
