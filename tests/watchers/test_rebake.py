"""Rebake: derived fields replaced, curated fields kept, new models flagged, result validated."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from driftgate.proxy.errors import TemplateError
from driftgate.proxy.templates import BUNDLED_DIR, validate_template
from driftgate.watchers.extractors import Extracted
from driftgate.watchers.rebake import rebake

OBSERVED = "2026-11-24T20:00:00Z"
INTEGRITY = "sha512-" + "A" * 86 + "=="


def bundled(name: str) -> dict[str, Any]:
    return json.loads((BUNDLED_DIR / f"{name}.json").read_text())  # type: ignore[no-any-return]


def test_anthropic_rebake_keeps_curated_marks_new_drops_removed() -> None:
    current = bundled("anthropic")
    before = copy.deepcopy(current)
    models = [m for m in current["models"] if m != "claude-opus-4-5-20251101"] + ["claude-opus-5"]
    betas = ["context-1m-2025-08-07", "interleaved-thinking-2025-05-14", "fast-mode-2026-02-01"]
    out = rebake(
        current,
        Extracted(facts={"models": models, "betas": betas, "api_version": "2026-10-21"}),
        package="@anthropic-ai/sdk",
        version="1.13.0",
        integrity=INTEGRITY,
        observed_at=OBSERVED,
    )
    doc = out.candidate
    validate_template(doc)
    assert current == before  # the input is never mutated
    assert out.new_models == ("claude-opus-5",)
    assert out.removed_models == ("claude-opus-4-5-20251101",)
    assert "claude-opus-4-5-20251101" not in doc["models"]
    assert doc["models"]["claude-opus-5"] == {
        "context_window": None,
        "max_output_tokens": None,
        "pricing": None,
        "capabilities": None,
        "needs_review": True,
    }
    for kept in ("claude-opus-4-6", "claude-haiku-4-5", "claude-sonnet-4-5-20250929"):
        assert doc["models"][kept] == current["models"][kept]  # prices, windows, capabilities
    assert doc["aliases"] == current["aliases"]
    assert doc["beta_policy"] == current["beta_policy"]
    assert doc["notes"] == current["notes"]
    # Known betas keep their order, new ones are appended, dropped ones go.
    assert doc["api"]["betas"] == [
        "interleaved-thinking-2025-05-14",
        "context-1m-2025-08-07",
        "fast-mode-2026-02-01",
    ]
    assert doc["api"]["version"] == "2026-10-21"
    assert doc["source"] == {
        "package": "@anthropic-ai/sdk",
        "version": "1.13.0",
        "integrity": INTEGRITY,
        "observed_at": OBSERVED,
    }
    assert out.problems == ()


def test_alias_to_a_removed_model_is_reported() -> None:
    current = bundled("anthropic")
    models = [m for m in current["models"] if m != "claude-opus-4-6"]
    out = rebake(
        current,
        Extracted(facts={"models": models}),
        package="@anthropic-ai/sdk",
        version="1.13.0",
        integrity=None,
        observed_at=OBSERVED,
    )
    assert out.removed_models == ("claude-opus-4-6",)
    assert out.candidate["aliases"]["opus"] == "claude-opus-4-6"  # curated: a human re-points it
    # Every fact was read: an alias to re-point is for the reviewer (the PR lists it with the
    # removed model), not an extraction problem that would mark the candidate partial.
    assert out.problems == ()


def test_missing_fact_keeps_the_current_value_and_carries_the_problem() -> None:
    current = bundled("anthropic")
    problem = "resources/messages/messages.d.ts: type Model not found (file moved or type renamed?)"
    out = rebake(
        current,
        Extracted(facts={"betas": ["new-beta-2026-01-01"]}, problems=(problem,)),
        package="@anthropic-ai/sdk",
        version="1.13.0",
        integrity=None,
        observed_at=OBSERVED,
    )
    assert out.candidate["models"] == current["models"]
    assert out.new_models == () and out.removed_models == ()
    assert out.candidate["api"]["version"] == current["api"]["version"]
    assert out.candidate["api"]["betas"] == ["new-beta-2026-01-01"]
    assert out.problems == (problem,)


@pytest.mark.parametrize("facts", [{"models": []}, {"models": "claude-x"}, {"models": [1, 2]}])
def test_empty_or_malformed_facts_never_empty_the_template(facts: dict[str, Any]) -> None:
    current = bundled("openai")
    out = rebake(
        current,
        Extracted(facts=facts),
        package="openai",
        version="6.49.0",
        integrity=None,
        observed_at=OBSERVED,
    )
    assert out.candidate["models"] == current["models"]
    assert len(out.problems) == 1 and "kept the current value" in out.problems[0]


def test_same_facts_change_only_the_source() -> None:
    current = bundled("anthropic")
    facts = {
        "models": list(current["models"]),
        "betas": list(current["api"]["betas"]),
        "api_version": current["api"]["version"],
    }
    out = rebake(
        current,
        Extracted(facts=facts),
        package="@anthropic-ai/sdk",
        version="1.12.1",
        integrity=None,
        observed_at=OBSERVED,
    )
    changed = {k for k in current if current[k] != out.candidate[k]}
    assert changed == {"source"}


def test_client_rebake_replaces_tools_and_engines_keeps_the_rest() -> None:
    current = bundled("claude-code")
    tools = {
        "Bash": [
            "command",
            "timeout",
            "description",
            "run_in_background",
            "dangerouslyDisableSandbox",
        ],
        "Edit": ["file_path", "old_string", "new_string", "replace_all"],
        "WebFetch": ["url", "prompt"],
    }
    out = rebake(
        current,
        Extracted(facts={"tools": tools, "engines_node": ">=20.0.0"}),
        package="@anthropic-ai/claude-code",
        version="2.1.197",
        integrity=INTEGRITY,
        observed_at=OBSERVED,
    )
    doc = out.candidate
    validate_template(doc)
    assert set(doc["tools"]) == {"Bash", "Edit", "WebFetch"}  # Glob, Grep, Read, Write dropped
    # Known fields keep their current order; the new field is appended.
    assert doc["tools"]["Bash"] == [
        "command", "description", "timeout", "run_in_background", "dangerouslyDisableSandbox",
    ]  # fmt: skip
    assert doc["client"] == {
        "engines_node": ">=20.0.0",
        "session_headers": ["x-claude-code-session-id"],
        "families": ["claude-cli"],
    }
    for curated in ("request_fields", "headers", "notes", "dialect"):
        assert doc[curated] == current[curated]
    assert out.new_models == () and out.problems == ()


def test_facts_for_the_other_kind_are_ignored_with_a_problem() -> None:
    out = rebake(
        bundled("claude-code"),
        Extracted(facts={"models": ["x"]}),
        package="@anthropic-ai/claude-code",
        version="2.1.197",
        integrity=None,
        observed_at=OBSERVED,
    )
    assert "models" not in out.candidate
    assert out.problems == ("fact 'models' does not apply to a client template; ignored",)


def test_invalid_candidate_raises_template_error() -> None:
    with pytest.raises(TemplateError, match="integrity"):
        rebake(
            bundled("openai"),
            Extracted(facts={"models": ["gpt-9"]}),
            package="openai",
            version="7.0.0",
            integrity="md5-deadbeef",
            observed_at=OBSERVED,
        )


def test_a_package_json_version_other_than_the_served_one_is_a_problem() -> None:
    current = bundled("claude-code")
    facts = {"version": "2.1.196", "engines_node": current["client"]["engines_node"]}
    out = rebake(
        current,
        Extracted(facts=facts),
        package="@anthropic-ai/claude-code",
        version="2.1.197",
        integrity=INTEGRITY,
        observed_at=OBSERVED,
    )
    assert out.problems == (
        "package.json says version '2.1.196', but the registry served it as '2.1.197'",
    )
    same = rebake(
        current,
        Extracted(facts={**facts, "version": "2.1.197"}),
        package="@anthropic-ai/claude-code",
        version="2.1.197",
        integrity=INTEGRITY,
        observed_at=OBSERVED,
    )
    assert same.problems == () and same.candidate["source"]["version"] == "2.1.197"
