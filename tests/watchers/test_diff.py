"""The diff engine on the bundled templates and small edits of them."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from driftgate.proxy.templates import BUNDLED_DIR, canonical_json
from driftgate.watchers.diff import Change, diff_templates, fingerprint, render_markdown


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((BUNDLED_DIR / f"{name}.json").read_text())
    return doc


def test_identical_templates_have_no_drift() -> None:
    doc = load("anthropic")
    drift = diff_templates(doc, copy.deepcopy(doc))
    assert drift.changes == () and drift.severity == "none" and drift.unified == ""
    assert drift.summary() == ""


def test_version_bump_alone_is_trivial() -> None:
    old = load("anthropic")
    new = copy.deepcopy(old)
    new["source"]["version"] = "99.0.0"
    drift = diff_templates(old, new)
    assert drift.severity == "trivial"
    assert drift.changes == (
        Change("/source/version", "changed", old["source"]["version"], "99.0.0"),
    )
    assert drift.summary() == ""


def test_added_models_and_betas_are_additive_and_counted() -> None:
    old = load("anthropic")
    new = copy.deepcopy(old)
    new["models"]["claude-new-1"] = {"needs_review": True}
    new["models"]["claude-new-2"] = {"needs_review": True}
    new["api"]["betas"] = [*new["api"]["betas"], "b-1", "b-2", "b-3"]
    drift = diff_templates(old, new)
    assert drift.severity == "additive"
    assert drift.counts["+models"] == 2 and drift.counts["+betas"] == 3
    assert drift.summary() == "+2 models, +3 betas"
    assert Change("/api/betas", "added", None, "b-2") in drift.changes
    assert Change("/models/claude-new-1", "added", None, {"needs_review": True}) in drift.changes


def test_beta_order_is_not_a_change() -> None:
    old = load("anthropic")
    new = copy.deepcopy(old)
    new["api"]["betas"] = list(reversed(new["api"]["betas"]))
    assert diff_templates(old, new).changes == ()


def test_removed_model_beta_or_tool_is_breaking() -> None:
    up = load("anthropic")
    no_model = copy.deepcopy(up)
    gone = sorted(no_model["models"])[0]
    del no_model["models"][gone]
    drift = diff_templates(up, no_model)
    assert drift.severity == "breaking" and drift.summary() == "-1 model"
    assert drift.changes[0].kind == "removed" and drift.changes[0].path == f"/models/{gone}"

    no_beta = copy.deepcopy(up)
    no_beta["api"]["betas"] = no_beta["api"]["betas"][1:]
    assert diff_templates(up, no_beta).severity == "breaking"

    client = load("claude-code")
    no_tool = copy.deepcopy(client)
    del no_tool["tools"]["Bash"]
    drift = diff_templates(client, no_tool)
    assert drift.severity == "breaking" and drift.counts["-tools"] == 1


def test_curated_field_change_is_additive_and_counted_as_field() -> None:
    old = load("anthropic")
    new = copy.deepcopy(old)
    model = next(iter(new["models"]))
    new["models"][model]["context_window"] = 123
    drift = diff_templates(old, new)
    assert drift.severity == "additive" and drift.summary() == "~1 field"
    assert drift.changes == (
        Change(
            f"/models/{model}/context_window",
            "changed",
            old["models"][model]["context_window"],
            123,
        ),
    )


def test_api_version_and_node_range_are_named_in_the_summary() -> None:
    old = load("anthropic")
    new = copy.deepcopy(old)
    new["api"]["version"] = "2099-01-01"
    drift = diff_templates(old, new)
    assert drift.severity == "additive" and drift.summary() == "API version 2099-01-01"
    assert drift.changes == (
        Change("/api/version", "changed", old["api"]["version"], "2099-01-01"),
    )
    client = load("claude-code")
    newer = copy.deepcopy(client)
    newer["client"]["engines_node"] = ">=99"
    assert diff_templates(client, newer).summary() == "Node >=99"


def test_new_tool_field_is_an_added_set_item() -> None:
    old = load("claude-code")
    new = copy.deepcopy(old)
    new["tools"]["Bash"].append("sandbox")
    drift = diff_templates(old, new)
    assert drift.changes == (Change("/tools/Bash", "added", None, "sandbox"),)
    assert drift.severity == "additive"
    # A new input field of a known tool is not a new tool.
    assert drift.counts["+tools"] == 0 and drift.summary() == "+1 tool field"


def test_a_tool_losing_a_field_is_counted_as_a_field_not_a_removed_tool() -> None:
    old = load("claude-code")
    new = copy.deepcopy(old)
    new["tools"]["Bash"].remove("timeout")
    new["tools"]["NewTool"] = ["a", "b"]
    drift = diff_templates(old, new)
    assert drift.counts["-tools"] == 0 and drift.counts["-tool_fields"] == 1
    assert drift.summary() == "+1 tool, -1 tool field"
    assert drift.severity == "additive"


def test_keys_with_slashes_are_escaped_in_paths() -> None:
    old: dict[str, Any] = {"models": {}}
    new: dict[str, Any] = {"models": {"org/model~x": {}}}
    assert diff_templates(old, new).changes[0].path == "/models/org~1model~0x"


def test_fingerprint_is_sha256_of_canonical_json_without_observed_at() -> None:
    doc = load("openai")
    view = copy.deepcopy(doc)
    del view["source"]["observed_at"]
    expected = "sha256:" + hashlib.sha256(canonical_json(view).encode()).hexdigest()
    assert fingerprint(doc) == expected
    assert diff_templates(load("openai"), doc).fingerprint == expected
    # When a run looked is not part of the identity; every fact and the rest of source is.
    later = copy.deepcopy(doc)
    later["source"]["observed_at"] = "2099-01-01T00:00:00Z"
    assert fingerprint(later) == expected
    for key, value in (("version", "99.0.0"), ("integrity", "sha512-x")):
        moved = copy.deepcopy(doc)
        moved["source"][key] = value
        assert fingerprint(moved) != expected
    renamed = copy.deepcopy(doc)
    renamed["models"]["gpt-new"] = {"needs_review": True}
    assert fingerprint(renamed) != expected


def test_unified_diff_is_of_canonical_json() -> None:
    old = load("anthropic")
    new = copy.deepcopy(old)
    new["api"]["version"] = "2099-01-01"
    unified = diff_templates(old, new).unified
    assert unified.startswith("--- a/anthropic.json\n+++ b/anthropic.json\n")
    assert '-    "version": "' + old["api"]["version"] + '"\n' in unified
    assert '+    "version": "2099-01-01"\n' in unified


def test_markdown_has_table_then_diff_block() -> None:
    old = load("anthropic")
    new = copy.deepcopy(old)
    new["models"]["claude-new-1"] = {"needs_review": True, "notes": "a | b"}
    md = render_markdown(diff_templates(old, new), title="anthropic")
    assert md.startswith("### anthropic\n")
    table = md.index("| change | path | old | new |")
    block = md.index("```diff\n")
    assert table < block and md.rstrip().endswith("```")
    assert "| added | `/models/claude-new-1` |" in md
    assert "a \\| b" in md  # a pipe in a value cannot break the table


def test_markdown_truncates_a_long_diff_with_a_note() -> None:
    old = load("anthropic")
    new = copy.deepcopy(old)
    for i in range(400):
        new["models"][f"claude-bulk-{i}"] = {"needs_review": True, "notes": "x" * 50}
    drift = diff_templates(old, new)
    md = render_markdown(drift, max_chars=5_000)
    assert len(md) <= 5_000
    assert "Diff truncated" in md and "more lines not shown" in md
    assert "more changes not listed" in md
    assert "200 more changes not listed" in render_markdown(drift, max_chars=10**7)


def test_backticks_in_values_cannot_close_the_fence() -> None:
    old = load("anthropic")
    new = copy.deepcopy(old)
    new["notes"] = "```\n# not a heading"
    md = render_markdown(diff_templates(old, new))
    assert "````diff\n" in md


names = st.text(alphabet="abcdefgh-", min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(st.sets(names, max_size=8), st.sets(names, max_size=8))
def test_set_diff_counts_match_set_algebra(before: set[str], after: set[str]) -> None:
    old = {"api": {"betas": sorted(before)}, "models": {m: {} for m in before}}
    new = {"api": {"betas": sorted(after)}, "models": {m: {} for m in after}}
    drift = diff_templates(old, new)
    assert drift.counts["+betas"] == len(after - before) == drift.counts["+models"]
    assert drift.counts["-betas"] == len(before - after) == drift.counts["-models"]
    expected = "none" if before == after else ("breaking" if before - after else "additive")
    assert drift.severity == expected
