"""Merging live facts into a client template: declared facts are never overwritten, entries say
where they came from, the same log gives the same document, and the translation probe is real."""

from __future__ import annotations

import json
from typing import Any

from driftgate.proxy.templates import BUNDLED_DIR
from driftgate.proxy.templates.loader import validate_template
from driftgate.watchers.shapes.aggregate import ShapeRow, facts_of
from driftgate.watchers.shapes.merge import merge
from driftgate.watchers.shapes.probe import untranslated


def _row(count: int, **values: Any) -> ShapeRow:
    shape = {"fields": {"model": ["string"], "tools": ["array"], "speed": ["string"]},
             "values": values, "headers": ["x-api-key"], "header_values": {}}  # fmt: skip
    return ShapeRow("claude-cli", "2.1.332", "messages", shape, count, 100.0, 200.0)


TEMPLATE: dict[str, Any] = {
    "name": "claude-code", "kind": "client", "dialect": "anthropic",
    "source": {"package": "@anthropic-ai/claude-code", "version": "2.1.190"},
    "tools": {"Read": ["file_path"]}, "headers": ["x-api-key"],
    "request_fields": {"tools": {"anthropic": "forward", "openai": "translate"}},
}  # fmt: skip


def test_declared_facts_stay_and_new_ones_say_their_source() -> None:
    facts = facts_of([_row(5, tool_names=["Read", "ToolSearch"], roles=["user"])])["claude-cli"]
    result = merge(TEMPLATE, facts, min_count=3)
    observed = result.candidate["observed"]
    assert result.candidate["tools"] == TEMPLATE["tools"]
    assert set(observed["tool_names"]) == {"ToolSearch"}
    assert "x-api-key" not in observed.get("headers", {})
    assert "tools" not in observed["fields"] and observed["fields"]["speed"]["types"] == ["string"]
    assert observed["roles"]["user"] == {
        "source": "shapes", "count": 5, "first_seen": "1970-01-01T00:01:40Z",
        "last_seen": "1970-01-01T00:03:20Z", "client_versions": ["2.1.332"],
    }  # fmt: skip


def test_below_min_count_is_left_out_and_a_rerun_is_stable() -> None:
    facts = facts_of([_row(2, roles=["system"])])["claude-cli"]
    assert not merge(TEMPLATE, facts, min_count=3).changed
    facts = facts_of([_row(4, roles=["system"])])["claude-cli"]
    first = merge(TEMPLATE, facts, min_count=3)
    again = merge(first.candidate, facts, min_count=3)
    assert again.candidate == first.candidate and not again.changed


def test_the_merged_template_is_valid_against_the_client_schema() -> None:
    facts = facts_of([_row(4, roles=["system"], tool_names=["ToolSearch"])])["claude-cli"]
    doc = json.loads((BUNDLED_DIR / "claude-code.json").read_text())
    validate_template(doc, "claude-code.json")  # an old template (no `observed`) stays valid
    validate_template(merge(doc, facts, min_count=3).candidate, "candidate")


def test_the_probe_runs_the_real_translator() -> None:
    found = untranslated("anthropic", {"fields": {"speed": ("string",)}, "roles": {"user": ()}})
    assert found == [("openai", "fields", "speed", "dropped: speed")]
