"""A failing backend rests for a while before the router tries it again.

The deadlines are read on every request, so they always live in this process; a board
(`proxy/shared/`) shares them with the other gateways or workers: it is told when this process
starts or clears a cooldown, and hands in what the others started or cleared (`heard`).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Protocol

_SECONDS = re.compile(r"\s*(\d+(?:\.\d+)?)\s*")
# A failure that only pushes a shared cooldown's end this much further is not shared again: a
# backend failing every request (all routes cooling) would otherwise cost a write per request.
SHARE_EXTENSION = 1.0


class CooldownBoard(Protocol):
    """Where this process's cooldowns are shared (Redis, or the workers' run directory)."""

    def shared(self, backend: str, seconds: float) -> None:
        """This process cooled `backend` for `seconds` from now (0: it answered); never blocks."""
        ...


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
        self._shared: dict[str, float] = {}  # the deadline last told to the board, per backend
        self.started: dict[str, int] = {}  # cooldowns started per backend (for /metrics)
        self.board: CooldownBoard | None = None

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
        now = self._clock()
        until = now + wait
        previous = self._until.get(backend, -math.inf)
        if previous <= now:
            self.started[backend] = self.started.get(backend, 0) + 1
        if until > previous:
            self._until[backend] = until
            board = self.board
            if board is not None and until > self._shared.get(backend, -math.inf) + SHARE_EXTENSION:
                self._shared[backend] = until
                board.shared(backend, wait)

    def ok(self, backend: str) -> None:
        """A success clears the cooldown (here, and on the board when one was running)."""
        if self._until.pop(backend, None) is not None:
            self._shared.pop(backend, None)
            if self.board is not None:
                self.board.shared(backend, 0.0)

    def heard(self, backend: str, seconds: float) -> None:
        """Another gateway or worker cooled `backend` for `seconds` from now (0: it cleared it)."""
        if seconds <= 0:
            self._until.pop(backend, None)
            self._shared.pop(backend, None)
            return
        until = self._clock() + min(seconds, self._max)
        if until > self._until.get(backend, -math.inf):
            self._until[backend] = until
            self._shared[backend] = until  # already on the board: not told back

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
            self._shared.pop(backend, None)
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
