"""The shapes watcher's watermark: only what the log gained since the last successful run is
taken, the totals keep what was taken before, and the state survives a save and a load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from driftgate.watchers.errors import StateError
from driftgate.watchers.shapes.aggregate import ShapeRow
from driftgate.watchers.shapes.watermark import ShapesState, Watermark


def _row(key: str, count: int, last: float, tool: str = "ToolSearch") -> ShapeRow:
    shape = {"fields": {"model": ["string"]}, "values": {"tool_names": [tool]}}
    return ShapeRow("claude-cli", "2.1.332", "messages", shape, count, 100.0, last, key)


def test_a_row_counts_for_what_it_grew_by_and_an_unchanged_row_for_nothing() -> None:
    mark = Watermark()
    assert [r.count for r in mark.take([_row("a", 3, 200.0)], {"a"})] == [3]
    assert mark.take([_row("a", 3, 200.0)], {"a"}) == []  # nothing new: nothing taken
    assert [r.count for r in mark.take([_row("a", 5, 300.0)], {"a"})] == [2]
    assert mark.since == 300.0
    assert mark.totals["claude-cli"]["tool_names"]["ToolSearch"].count == 5


def test_a_row_trimmed_by_the_cap_keeps_its_counts_and_counts_again_when_it_returns() -> None:
    mark = Watermark()
    mark.take([_row("a", 7, 200.0)], {"a"})
    mark.take([_row("b", 1, 250.0, tool="Skill")], {"b"})  # "a" was trimmed from the log
    assert "a" not in mark.taken
    assert mark.totals["claude-cli"]["tool_names"]["ToolSearch"].count == 7
    assert [r.count for r in mark.take([_row("a", 2, 300.0)], {"a", "b"})] == [2]
    assert mark.totals["claude-cli"]["tool_names"]["ToolSearch"].count == 9


def test_the_state_round_trips_per_shape_log_file(tmp_path: Path) -> None:
    state = ShapesState.load(tmp_path / "state" / "shapes.json")
    state.watermark(tmp_path / "one.sqlite3").take([_row("a", 4, 200.0)], {"a"})
    state.watermark(tmp_path / "two.sqlite3")
    state.save()
    again = ShapesState.load(tmp_path / "state" / "shapes.json")
    one = again.watermark(tmp_path / "one.sqlite3")
    assert one.taken == {"a": 4} and one.since == 200.0
    fact = one.totals["claude-cli"]["tool_names"]["ToolSearch"]
    assert (fact.count, fact.first_seen, fact.versions) == (4, 100.0, {"2.1.332"})
    assert again.watermark(tmp_path / "two.sqlite3").taken == {}


def test_a_damaged_state_is_an_error_saying_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "shapes.json"
    path.write_text(json.dumps({"version": 1, "logs": {"x": {"taken": {"a": "many"}}}}))
    with pytest.raises(StateError, match="delete it"):
        ShapesState.load(path)
