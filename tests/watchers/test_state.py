"""The watcher state: versions handled, trivial releases recorded and folded, safe on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from driftgate.watchers.errors import StateError
from driftgate.watchers.state import TrivialRelease, WatchState, state_path


def _release(version: str, base: str = "1.0.0") -> TrivialRelease:
    return TrivialRelease("pkg", version, base, "sha512-AAAA", "2026-11-24T00:00:00Z")


def test_absent_file_is_an_empty_state(tmp_path: Path) -> None:
    state = WatchState.load(tmp_path / "state" / "npm.json")
    assert state.last_seen("pkg", "latest") is None
    assert state.pending_trivial("tpl", "1.0.0") == ()


def test_round_trip_keeps_seen_versions_and_trivial_releases(tmp_path: Path) -> None:
    path = state_path(tmp_path)
    state = WatchState.load(path)
    state.mark_seen("@scope/pkg", "latest", "1.2.0")
    state.mark_seen("@scope/pkg", "next", "2.0.0-beta.1")
    state.record_trivial("tpl", _release("1.0.1"))
    state.save()

    again = WatchState.load(path)
    assert again.last_seen("@scope/pkg", "latest") == "1.2.0"
    assert again.last_seen("@scope/pkg", "next") == "2.0.0-beta.1"
    assert again.last_seen("@scope/pkg", "beta") is None
    assert again.pending_trivial("tpl", "1.0.0") == (_release("1.0.1"),)
    assert path == tmp_path / "state" / "npm.json"


def test_the_same_trivial_release_is_recorded_once(tmp_path: Path) -> None:
    state = WatchState.load(tmp_path / "s.json")
    state.record_trivial("tpl", _release("1.0.1"))
    state.record_trivial("tpl", _release("1.0.1"))
    state.record_trivial("tpl", _release("1.0.2"))
    assert [r.version for r in state.pending_trivial("tpl", "1.0.0")] == ["1.0.1", "1.0.2"]


def test_trivial_releases_on_an_older_base_are_dropped(tmp_path: Path) -> None:
    # Once a PR moved the template past 1.0.0, the releases recorded on top of 1.0.0 are history.
    state = WatchState.load(tmp_path / "s.json")
    state.record_trivial("tpl", _release("1.0.1", base="1.0.0"))
    assert state.pending_trivial("tpl", "1.1.0") == ()
    assert "tpl" not in state.to_json()["trivial"]


def test_save_is_atomic_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "state" / "npm.json"
    state = WatchState.load(path)
    state.mark_seen("pkg", "latest", "1.0.0")
    state.save()
    assert [p.name for p in path.parent.iterdir()] == ["npm.json"]
    assert json.loads(path.read_text())["seen"] == {"pkg": {"latest": "1.0.0"}}


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps({"version": 99}),
        json.dumps([1, 2]),
        json.dumps({"version": 1, "trivial": {"t": [{"x": 1}]}}),
    ],
)
def test_a_damaged_state_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "npm.json"
    path.write_text(content)
    with pytest.raises(StateError) as err:
        WatchState.load(path)
    assert "state" in str(err.value)


def test_unwritable_state_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StateError):
        WatchState.load(blocker / "npm.json")  # its parent is a file
    state = WatchState(path=blocker / "npm.json")
    state.mark_seen("pkg", "latest", "1.0.0")
    with pytest.raises(StateError) as err:
        state.save()
    assert "cannot write" in str(err.value)
