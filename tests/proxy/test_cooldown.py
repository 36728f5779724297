"""Cooldowns on a fake clock, and Retry-After parsing."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from driftgate.proxy.cooldown import Cooldowns, parse_retry_after


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_failed_backend_cools_for_the_configured_seconds() -> None:
    clock = FakeClock()
    c = Cooldowns(30, clock)
    assert c.cooling("a") == 0.0
    c.fail("a")
    assert c.cooling("a") == 30.0
    assert c.cooling("b") == 0.0
    clock.now += 29.5
    assert c.cooling("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert c.cooling("a") == 0.0


def test_retry_after_longer_than_the_default_wins_and_shorter_does_not() -> None:
    clock = FakeClock()
    c = Cooldowns(30, clock)
    c.fail("a", retry_after=120)
    c.fail("b", retry_after=5)
    assert c.cooling("a") == 120.0
    assert c.cooling("b") == 30.0


def test_a_later_shorter_failure_does_not_cut_a_running_cooldown() -> None:
    clock = FakeClock()
    c = Cooldowns(10, clock)
    c.fail("a", retry_after=100)
    clock.now += 1
    c.fail("a")
    assert c.cooling("a") == 99.0


def test_retry_after_is_capped() -> None:
    c = Cooldowns(10, FakeClock(), max_seconds=600)
    c.fail("a", retry_after=10**9)
    assert c.cooling("a") == 600.0


def test_success_clears_the_cooldown() -> None:
    c = Cooldowns(30, FakeClock())
    c.fail("a")
    c.ok("a")
    assert c.cooling("a") == 0.0
    c.ok("never-failed")
    assert c.cooling("never-failed") == 0.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), (" 7 ", 7.0), ("1.5", 1.5), ("0", 0.0), (None, None), ("", None)],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


@pytest.mark.parametrize("value", ["soon", "-5", "inf", "nan", "1e3", "Wed, 99 Foo 2015"])
def test_parse_retry_after_rejects_garbage(value: str) -> None:
    assert parse_retry_after(value) is None


def test_parse_retry_after_http_date() -> None:
    now = datetime(2026, 11, 24, 20, 0, 0, tzinfo=UTC).timestamp()
    later = format_datetime(datetime(2026, 11, 24, 20, 1, 30, tzinfo=UTC), usegmt=True)
    assert later.endswith("GMT")
    assert parse_retry_after(later, now=lambda: now) == 90.0
    assert parse_retry_after("Tue, 24 Nov 2026 20:00:10 -0000", now=lambda: now) == 10.0


def test_parse_retry_after_date_in_the_past_is_zero() -> None:
    now = datetime(2026, 11, 24, 20, 0, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after("Tue, 24 Nov 2026 19:00:00 GMT", now=lambda: now) == 0.0


class Board:
    """What a cooldown board is told (the seam the Redis and workers' boards sit behind)."""

    def __init__(self) -> None:
        self.told: list[tuple[str, float]] = []

    def shared(self, backend: str, seconds: float) -> None:
        self.told.append((backend, seconds))


def test_a_board_is_told_of_a_cooldown_and_of_its_end_but_not_of_every_success() -> None:
    clock, board = FakeClock(), Board()
    c = Cooldowns(30, clock)
    c.board = board
    c.ok("a")  # nothing cooling: a success tells nobody (the usual request costs nothing)
    c.fail("a", retry_after=120)
    assert board.told == [("a", 120.0)]
    c.ok("a")
    assert board.told == [("a", 120.0), ("a", 0.0)]
    c.ok("a")
    assert len(board.told) == 2


def test_a_failure_that_barely_lengthens_a_shared_cooldown_is_not_shared_again() -> None:
    clock, board = FakeClock(), Board()
    c = Cooldowns(30, clock)
    c.board = board
    c.fail("a")
    clock.now += 0.5
    c.fail("a")  # 0.5 s longer: every request of a backend left alone would write otherwise
    assert board.told == [("a", 30.0)]
    assert c.cooling("a") == 30.0  # still counted here
    clock.now += 5
    c.fail("a")
    assert board.told == [("a", 30.0), ("a", 30.0)]


def test_a_cooldown_heard_from_another_gateway_applies_here_and_is_not_told_back() -> None:
    clock, board = FakeClock(), Board()
    c = Cooldowns(30, clock, max_seconds=600)
    c.board = board
    c.heard("a", 90.0)
    assert c.cooling("a") == 90.0 and c.anything_cooling
    assert c.started == {}  # /metrics counts the cooldowns this process started
    c.fail("a")  # shorter than what runs: kept, and nothing to share
    assert board.told == [] and c.cooling("a") == 90.0
    c.heard("a", 10**6)
    assert c.cooling("a") == 600.0  # our own cap holds for theirs too
    c.heard("a", 0.0)  # another gateway saw it answer
    assert c.cooling("a") == 0.0 and not c.anything_cooling
    c.ok("a")
    assert board.told == []  # already cleared there
