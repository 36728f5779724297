"""Cooldowns shared by the workers of one host through files under DRIFTGATE_HOME/run/cooldowns."""

from __future__ import annotations

import asyncio
from pathlib import Path

from driftgate.proxy.cooldown import Cooldowns
from driftgate.proxy.shared.file_cooldowns import FileCooldowns, cooldowns_dir


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _workers(
    tmp_path: Path, clock: Clock
) -> tuple[Cooldowns, FileCooldowns, Cooldowns, FileCooldowns]:
    """Two workers' cooldowns on one home (their monotonic and wall clocks: one fake clock)."""
    folder = cooldowns_dir(tmp_path)
    a, b = Cooldowns(30, clock), Cooldowns(30, clock)
    return a, FileCooldowns(folder, a, clock, pid=1), b, FileCooldowns(folder, b, clock, pid=2)


def test_a_backend_cooled_by_one_worker_cools_on_the_other_for_the_time_left(
    tmp_path: Path,
) -> None:
    clock = Clock()
    a, board_a, b, board_b = _workers(tmp_path, clock)
    a.fail("anthropic/eu", retry_after=120)  # a name with a slash is still one file
    clock.now += 20
    board_b.refresh()
    assert b.cooling("anthropic/eu") == 100.0
    board_a.refresh()  # its own file changes nothing
    assert a.cooling("anthropic/eu") == 100.0
    b.ok("anthropic/eu")  # worker b saw it answer: both stop cooling it
    assert not list(cooldowns_dir(tmp_path).iterdir())
    board_a.refresh()
    assert a.cooling("anthropic/eu") == 0.0


def test_a_worker_started_later_takes_in_what_still_cools_and_ignores_what_ended(
    tmp_path: Path,
) -> None:
    clock = Clock()
    a, _, _, _ = _workers(tmp_path, clock)
    a.fail("x")
    a.fail("y", retry_after=300)
    clock.now += 60  # x's 30 s are over
    late = Cooldowns(30, clock)
    asyncio.run(_started_and_closed(FileCooldowns(cooldowns_dir(tmp_path), late, clock, pid=3)))
    assert late.all_cooling() == {"y": 240.0}


async def _started_and_closed(board: FileCooldowns) -> None:
    await board.start()
    await board.close()


def test_an_unreadable_file_is_skipped(tmp_path: Path) -> None:
    clock = Clock()
    _, _, b, board_b = _workers(tmp_path, clock)
    (cooldowns_dir(tmp_path) / "broken").write_text("not a deadline")
    board_b.refresh()
    assert b.all_cooling() == {}
