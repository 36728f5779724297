"""The template store: bundled set, overlay directory, last-good on invalid files, hot reload."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from driftgate.proxy.templates import canonical_json, load_bundled
from driftgate.proxy.templates.store import TemplateStore

BUNDLED = load_bundled()


class Overlay:
    """Writes real template files; bumps mtime explicitly so each write is a visible change."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(exist_ok=True)
        self._tick = 1_700_000_000_000_000_000

    def write(self, filename: str, text: str) -> Path:
        path = self.dir / filename
        path.write_text(text, encoding="utf-8")
        self._tick += 1_000_000_000
        os.utime(path, ns=(self._tick, self._tick))
        return path

    def template(self, base: str, filename: str | None = None, **changes: Any) -> dict[str, Any]:
        doc = copy.deepcopy(dict(BUNDLED.templates[base].doc))
        doc.update(changes)
        self.write(filename or f"{base}.json", canonical_json(doc))
        return doc


@pytest.fixture
def overlay(tmp_path: Path) -> Overlay:
    return Overlay(tmp_path / "templates")


def aliases(store: TemplateStore) -> dict[str, str]:
    t = store.current().get("anthropic")
    assert t is not None
    return dict(t.doc["aliases"])


def test_without_overlay_the_bundled_set_is_served() -> None:
    store = TemplateStore(None)
    assert store.current().summary() == BUNDLED.summary()
    assert store.reload_if_changed() is False
    assert store.current().errors == ()


def test_overlay_replaces_a_bundled_template(overlay: Overlay) -> None:
    overlay.template("anthropic", aliases={"opus": "claude-opus-4-5"})
    store = TemplateStore(overlay.dir)
    current = store.current()
    assert aliases(store) == {"opus": "claude-opus-4-5"}
    assert current.templates["anthropic"].origin == str(overlay.dir / "anthropic.json")
    assert current.templates["anthropic"].hash != BUNDLED.templates["anthropic"].hash
    assert current.templates["openai"].hash == BUNDLED.templates["openai"].hash
    assert current.errors == ()


def test_unchanged_directory_keeps_the_same_set_object(overlay: Overlay) -> None:
    overlay.template("anthropic", aliases={"opus": "claude-opus-4-5"})
    store = TemplateStore(overlay.dir)
    before = store.current()
    assert store.reload_if_changed() is False
    assert store.current() is before


def test_touching_a_file_without_changing_it_keeps_the_set_object(overlay: Overlay) -> None:
    overlay.template("anthropic", aliases={"opus": "claude-opus-4-5"})
    store = TemplateStore(overlay.dir)
    before = store.current()
    overlay.template("anthropic", aliases={"opus": "claude-opus-4-5"})
    assert store.reload_if_changed() is False
    assert store.current() is before


def test_a_changed_file_is_picked_up(overlay: Overlay) -> None:
    overlay.template("anthropic", aliases={"opus": "claude-opus-4-5"})
    store = TemplateStore(overlay.dir)
    overlay.template("anthropic", aliases={"opus": "claude-opus-4-6", "fast": "claude-haiku-4-5"})
    assert store.reload_if_changed() is True
    assert aliases(store) == {"opus": "claude-opus-4-6", "fast": "claude-haiku-4-5"}


def test_an_invalid_file_keeps_the_last_good_version_and_others_still_update(
    overlay: Overlay, caplog: pytest.LogCaptureFixture
) -> None:
    overlay.template("anthropic", aliases={"opus": "claude-opus-4-5"})
    store = TemplateStore(overlay.dir, logging.getLogger("test.store"))
    overlay.write("anthropic.json", '{"schema_version": 1, "name": "anthropic", ')
    overlay.template("openai", aliases={"four": "gpt-4o"})
    with caplog.at_level(logging.WARNING, logger="test.store"):
        assert store.reload_if_changed() is True
    current = store.current()
    assert aliases(store) == {"opus": "claude-opus-4-5"}  # last good overlay, not bundled
    assert dict(current.templates["openai"].doc["aliases"]) == {"four": "gpt-4o"}
    assert len(current.errors) == 1
    assert "anthropic.json" in current.errors[0] and "not valid JSON" in current.errors[0]
    assert "keeping" in current.errors[0]
    assert any("anthropic.json" in r.getMessage() for r in caplog.records)


def test_a_schema_violation_never_loaded_falls_back_to_bundled(overlay: Overlay) -> None:
    overlay.template("anthropic", aliases={"opus": 42})
    store = TemplateStore(overlay.dir)
    assert aliases(store) == dict(BUNDLED.templates["anthropic"].doc["aliases"])
    assert len(store.current().errors) == 1
    assert "/aliases/opus" in store.current().errors[0]
    assert "bundled" in store.current().errors[0]


def test_fixing_an_invalid_file_clears_the_error(overlay: Overlay) -> None:
    overlay.write("anthropic.json", "not json")
    store = TemplateStore(overlay.dir)
    assert store.current().errors
    overlay.template("anthropic", aliases={"opus": "claude-opus-4-5"})
    assert store.reload_if_changed() is True
    assert store.current().errors == ()
    assert aliases(store) == {"opus": "claude-opus-4-5"}


def test_a_removed_file_falls_back_to_the_bundled_template(overlay: Overlay) -> None:
    overlay.template("anthropic", aliases={"opus": "claude-opus-4-5"})
    store = TemplateStore(overlay.dir)
    (overlay.dir / "anthropic.json").unlink()
    assert store.reload_if_changed() is True
    assert store.current().templates["anthropic"].hash == BUNDLED.templates["anthropic"].hash


def test_a_new_template_name_is_added(overlay: Overlay) -> None:
    overlay.template("openai", filename="groq.json", name="groq", aliases={"big": "llama-3.3-70b"})
    store = TemplateStore(overlay.dir)
    assert "groq" in store.current().templates
    assert set(BUNDLED.templates) < set(store.current().templates)


def test_file_name_must_match_the_template_name(overlay: Overlay) -> None:
    overlay.template("anthropic", filename="other.json", aliases={})
    store = TemplateStore(overlay.dir)
    assert "other" not in store.current().templates
    assert store.current().templates["anthropic"].hash == BUNDLED.templates["anthropic"].hash
    assert "name the file anthropic.json" in store.current().errors[0]


def test_an_overlay_cannot_change_a_bundled_templates_dialect(overlay: Overlay) -> None:
    overlay.template("anthropic", dialect="openai")
    store = TemplateStore(overlay.dir)
    assert store.current().templates["anthropic"].doc["dialect"] == "anthropic"
    assert "differs from the bundled" in store.current().errors[0]


def test_schema_files_in_the_overlay_are_ignored(overlay: Overlay) -> None:
    overlay.write("upstream.schema.json", "{}")
    store = TemplateStore(overlay.dir)
    assert store.current().errors == ()


def test_a_missing_overlay_directory_is_reported_and_bundled_served(tmp_path: Path) -> None:
    store = TemplateStore(tmp_path / "absent")
    assert store.current().templates.keys() == BUNDLED.templates.keys()
    assert "not a directory" in store.current().errors[0]
    assert store.reload_if_changed() is False


def test_watch_swaps_in_a_changed_file(overlay: Overlay) -> None:
    overlay.template("anthropic", aliases={"opus": "claude-opus-4-5"})
    store = TemplateStore(overlay.dir)

    async def scenario() -> dict[str, str]:
        task = asyncio.create_task(store.watch(interval=0.01))
        overlay.template("anthropic", aliases={"opus": "claude-opus-4-6"})
        try:
            for _ in range(1000):  # bounded wait for the poll to notice; not a speed assertion
                if aliases(store)["opus"] == "claude-opus-4-6":
                    break
                await asyncio.sleep(0.01)
            return aliases(store)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    assert asyncio.run(scenario()) == {"opus": "claude-opus-4-6"}
