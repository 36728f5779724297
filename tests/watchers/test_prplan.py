"""What a drift PR says: title, labels, body sections, provenance, checklist, commit message."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from driftgate.proxy.templates import BUNDLED_DIR, canonical_json, load_template_file
from driftgate.watchers.diff import diff_templates
from driftgate.watchers.npm.registry_url import display_url
from driftgate.watchers.prplan import (
    RUNBOOK_PATH,
    RUNBOOK_SECTION,
    Provenance,
    build_plan,
    pr_labels,
    pr_title,
    runbook_url,
)
from driftgate.watchers.state import TrivialRelease


def _anthropic() -> dict[str, Any]:
    return copy.deepcopy(dict(load_template_file(BUNDLED_DIR / "anthropic.json").doc))


def _prov(**kw: Any) -> Provenance:
    base: dict[str, Any] = dict(
        package="@anthropic-ai/sdk",
        tag="latest",
        old_version="1.11.0",
        new_version="1.12.0",
        integrity="sha512-" + "A" * 86 + "==",
        tarball_url="https://registry.example/@anthropic-ai/sdk/-/sdk-1.12.0.tgz",
        registry="https://registry.example/",
        observed_at="2026-11-24T20:00:00Z",
    )
    base.update(kw)
    return Provenance(**base)


def _bumped(doc: dict[str, Any], version: str = "1.12.0") -> dict[str, Any]:
    new = copy.deepcopy(doc)
    new["source"]["version"] = version
    return new


def test_title_names_template_package_versions_and_counts() -> None:
    old = _anthropic()
    new = _bumped(old)
    new["models"]["claude-new-1"] = {"needs_review": True}
    new["models"]["claude-new-2"] = {"needs_review": True}
    new["api"]["betas"] += ["a-2026-01-01", "b-2026-01-01", "c-2026-01-01"]
    title = pr_title("anthropic", _prov(), diff_templates(old, new), ())
    assert title == "drift(anthropic): @anthropic-ai/sdk 1.11.0 -> 1.12.0: +2 models, +3 betas"


def test_title_of_a_version_bump_and_of_an_extractor_problem() -> None:
    old = _anthropic()
    drift = diff_templates(old, _bumped(old))
    assert pr_title("anthropic", _prov(), drift, ()).endswith(": version bump only")
    assert pr_title("anthropic", _prov(), drift, ("x not found",)).endswith(
        ": extractor needs attention"
    )


def test_labels_follow_severity_and_problems() -> None:
    old = _anthropic()
    added = _bumped(old)
    added["api"]["betas"].append("new-beta-2026-01-01")
    removed = _bumped(old)
    del removed["models"]["claude-opus-4-5"]
    assert pr_labels(diff_templates(old, added), ()) == ("drift", "drift:npm")
    assert pr_labels(diff_templates(old, removed), ()) == ("drift", "drift:npm", "breaking")
    assert "drift:extractor" in pr_labels(diff_templates(old, added), ("problem",))


def test_body_has_table_diff_provenance_folded_releases_and_checklist() -> None:
    old = _anthropic()
    new = _bumped(old)
    new["models"]["claude-new-1"] = {"needs_review": True, "pricing": None}
    del new["models"]["claude-opus-4-5"]
    folded = (
        TrivialRelease(
            "@anthropic-ai/sdk", "1.11.1", "1.11.0", "sha512-BBBB", "2026-11-20T00:00:00Z"
        ),
    )
    prov = _prov(run_url="https://github.com/o/r/actions/runs/42", folded=folded)
    plan = build_plan(
        "anthropic",
        new,
        diff_templates(old, new),
        prov,
        new_models=("claude-new-1",),
        runbook=runbook_url("https://github.com", "o/r"),
    )
    body = plan.body
    assert "| change | path | old | new |" in body
    assert "```diff" in body
    assert "### Removed (breaking)" in body and "model `claude-opus-4-5`" in body
    assert "### New models to review" in body and "- `claude-new-1`" in body
    assert "| versions | `1.11.0` → `1.12.0` (dist-tag `latest`) |" in body
    assert prov.integrity is not None and prov.integrity in body
    assert "| workflow run | https://github.com/o/r/actions/runs/42 |" in body
    assert "`1.11.1`" in body and "folded" in body
    assert "https://github.com/o/r/blob/HEAD/runbooks/npm-drift.md#breaking-drift" in body
    assert "- [ ] " in body
    assert "`npm view @anthropic-ai/sdk@1.12.0 dist.integrity`" in body
    # What the publisher writes is the canonical candidate.
    assert plan.content == canonical_json(new)
    assert plan.path == "proxy/templates/anthropic.json"
    assert plan.fingerprint.startswith("sha256:")
    assert plan.commit_message.startswith("drift(anthropic): @anthropic-ai/sdk 1.11.0 -> 1.12.0\n")
    assert "Folded trivial releases: 1.11.1" in plan.commit_message


def test_extractor_problems_are_listed_and_link_their_runbook_section() -> None:
    old = _anthropic()
    new = _bumped(old)
    problem = "resources/beta/beta.d.ts: type AnthropicBeta not found (file moved or type renamed?)"
    plan = build_plan("anthropic", new, diff_templates(old, new), _prov(), problems=(problem,))
    assert "### Extractor problems" in plan.body and problem in plan.body
    assert "#extractor-problems" in plan.body
    assert "drift:extractor" in plan.labels


def test_auto_merge_only_for_additive_or_trivial_drift_when_asked() -> None:
    old = _anthropic()
    added = _bumped(old)
    added["api"]["betas"].append("new-beta-2026-01-01")
    removed = _bumped(old)
    removed["api"]["betas"] = removed["api"]["betas"][1:]
    plan = build_plan
    assert plan(
        "anthropic", added, diff_templates(old, added), _prov(), auto_merge="additive"
    ).auto_merge
    assert not plan(
        "anthropic", added, diff_templates(old, added), _prov(), auto_merge="off"
    ).auto_merge
    assert not plan(
        "anthropic", removed, diff_templates(old, removed), _prov(), auto_merge="additive"
    ).auto_merge
    assert not plan(
        "anthropic",
        added,
        diff_templates(old, added),
        _prov(),
        auto_merge="additive",
        problems=("p",),
    ).auto_merge


def test_credentials_in_registry_urls_never_reach_the_body() -> None:
    old = _anthropic()
    new = _bumped(old)
    secret = "hunter2-" + "x" * 12
    prov = _prov(
        registry=f"https://bot:{secret}@npm.internal/",
        tarball_url=f"https://bot:{secret}@npm.internal/a.tgz",
    )
    body = build_plan("anthropic", new, diff_templates(old, new), prov).body
    assert secret not in body
    assert "https://npm.internal/" in body
    assert display_url("https://a:b@h/x", mask="") == "https://h/x"
    assert display_url("https://a:b@h/x") == "https://***@h/x"
    assert display_url("https://h/x", mask="") == "https://h/x"


def test_runbook_url_is_absolute_only_with_a_server_and_a_repo() -> None:
    assert runbook_url(None, None) == "runbooks/npm-drift.md"
    assert (
        runbook_url("https://ghe.corp/", "o/r")
        == "https://ghe.corp/o/r/blob/HEAD/runbooks/npm-drift.md"
    )


def test_every_runbook_anchor_the_checklist_links_exists() -> None:
    text = (Path(__file__).resolve().parents[2] / RUNBOOK_PATH).read_text()
    # GitHub's heading anchors: lower case, punctuation other than - and _ dropped, spaces to dashes.
    anchors = {
        re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", text, re.M)
    }
    assert (
        set(RUNBOOK_SECTION.values()) | {"extractor-problems", "new-models-needs_review"} <= anchors
    )


def test_a_tool_losing_a_field_is_not_listed_as_a_removed_tool() -> None:
    old = copy.deepcopy(dict(load_template_file(BUNDLED_DIR / "claude-code.json").doc))
    new = _bumped(old, "2.2.0")
    new["tools"]["Bash"].remove("timeout")
    del new["tools"]["Glob"]
    drift = diff_templates(old, new)
    prov = _prov(package="@anthropic-ai/claude-code", old_version="2.1.0", new_version="2.2.0")
    plan = build_plan("claude-code", new, drift, prov)
    removed = plan.body.split("### Removed (breaking)", 1)[1].split("###", 1)[0]
    assert "tool `Glob`" in removed and "Bash" not in removed
    assert plan.title.endswith("2.1.0 -> 2.2.0: -1 tool, -1 tool field")
    assert "breaking" in plan.labels and plan.fingerprint == drift.fingerprint


def test_a_removed_model_names_the_aliases_still_pointing_at_it() -> None:
    old = _anthropic()
    target = old["aliases"]["opus"]
    new = _bumped(old)
    del new["models"][target]
    plan = build_plan("anthropic", new, diff_templates(old, new), _prov())
    removed = plan.body.split("### Removed (breaking)", 1)[1].split("###", 1)[0]
    assert f"model `{target}` — still the target of alias `opus`" in removed
    assert not plan.partial and "drift:extractor" not in plan.labels
