"""`driftgate watch canary` end to end: loopback fake upstreams with scripted retirements and
refusals, the fake GitHub API for alerts and fix PRs, the real config loader."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from driftgate.proxy.errors import ConfigError
from driftgate.proxy.templates import BUNDLED_DIR
from driftgate.watchers.canary.command import CanaryFlags, run_watch_canary
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.behaviour import Behaviour
from tests.fakes.github_api import FakeGitHub
from tests.fakes.openai_upstream import FakeOpenAI

TEMPLATE_MODELS = {
    kind: tuple(json.loads((BUNDLED_DIR / f"{kind}.json").read_text())["models"])
    for kind in ("anthropic", "openai")
}


@pytest.fixture
def upstream() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic(models=TEMPLATE_MODELS["anthropic"], api_key="sk-ant-canary-test").start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def openai_upstream() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(models=TEMPLATE_MODELS["openai"]).start()
    try:
        yield fake
    finally:
        fake.stop()


def write_config(tmp_path: Path, *backends: tuple[str, str, str, str], extra: str = "") -> Path:
    """[backends.NAME] tables: (name, kind, base_url, key)."""
    lines = []
    for name, kind, url, key in backends:
        lines += [
            f"[backends.{name}]",
            f'kind = "{kind}"',
            f'base_url = "{url}"',
            f'key = "{key}"',
            "",
        ]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + extra)
    return path


class Run:
    """One canary invocation's exit status and output."""

    def __init__(self, status: int, out: str, err: str) -> None:
        self.status, self.out, self.err = status, out, err

    @property
    def report(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.out)
        return doc


def canary(tmp_path: Path, config: Path, env: dict[str, str] | None = None, **flags: Any) -> Run:
    out, err = io.StringIO(), io.StringIO()
    environ = {"DRIFTGATE_HOME": str(tmp_path / "home"), **(env or {})}
    status = run_watch_canary(
        CanaryFlags(**flags),
        config_path=config,
        env=environ,
        out=out,
        err=err,
        min_write_interval=0,
    )
    return Run(status, out.getvalue(), err.getvalue())


def anthropic_only(tmp_path: Path, fake: FakeAnthropic, key: str = "sk-ant-canary-test") -> Path:
    return write_config(tmp_path, ("anthropic", "anthropic", fake.url, key))


def github_flags(gh: FakeGitHub) -> dict[str, Any]:
    return {"repo": gh.full_name, "github_api_url": gh.url, "git_remote": str(gh.origin.path)}


def test_a_healthy_upstream_passes_every_probe_with_tiny_requests(
    tmp_path: Path, upstream: FakeAnthropic, openai_upstream: FakeOpenAI
) -> None:
    config = write_config(
        tmp_path,
        ("anthropic", "anthropic", upstream.url, "sk-ant-canary-test"),
        ("openai", "openai", openai_upstream.base_url, "sk-openai-canary"),
    )
    run = canary(tmp_path, config, as_json=True)
    assert run.status == 0, run.err
    probes = run.report["probes"]
    assert probes and {p["verdict"] for p in probes} == {"pass"}
    assert {p["backend"] for p in probes} == {"anthropic", "openai"}
    assert "estimated cost at most $" in run.err
    sent = upstream.requests_to("/v1/messages")
    assert len(sent) == sum(1 for p in probes if p["backend"] == "anthropic")
    for request in sent:
        assert request.headers["x-api-key"] == "sk-ant-canary-test"
        assert request.headers["anthropic-version"] == "2023-06-01"
        assert request.json["max_tokens"] in (1, 16, 1025)
    checks = {(p["model"], p["check"]) for p in probes}
    assert ("claude-opus-4-6", "adaptive_thinking") in checks
    assert ("claude-haiku-4-5", "adaptive_thinking") not in checks  # not claimed, not probed
    assert any(c.startswith("beta:") for _m, c in checks)
    assert ("gpt-5.4", "reasoning") in checks
    assert openai_upstream.requests_to("/v1/chat/completions")[0].headers["authorization"] == (
        "Bearer sk-openai-canary"
    )


def test_no_key_says_so_and_exits_3_sending_nothing(
    tmp_path: Path, upstream: FakeAnthropic
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[backends.anthropic]\nkind = "anthropic"\nbase_url = "{upstream.url}"\n'
        'key_env = "CANARY_TEST_KEY"\n'
    )
    for dry in (False, True):
        run = canary(tmp_path, config, dry_run=dry)
        assert run.status == 3
        assert "no API key" in run.out and "set CANARY_TEST_KEY" in run.out
    assert upstream.requests == []


def test_dry_run_lists_probes_and_cost_and_sends_nothing(
    tmp_path: Path, upstream: FakeAnthropic
) -> None:
    run = canary(tmp_path, anthropic_only(tmp_path, upstream), dry_run=True)
    assert run.status == 0
    assert "claude-opus-4-6              thinking" in run.out and "max_tokens 1025" in run.out
    assert upstream.requests == []


def test_cost_bounds_max_usd_refuses_and_max_probes_caps(
    tmp_path: Path, upstream: FakeAnthropic
) -> None:
    config = anthropic_only(tmp_path, upstream)
    with pytest.raises(ConfigError, match=r"over --max-usd 0\.001"):
        canary(tmp_path, config, max_usd=0.001)
    assert upstream.requests == []
    run = canary(tmp_path, config, max_probes=3, as_json=True)
    assert run.status == 0
    assert [p["check"] for p in run.report["probes"]] == ["served"] * 3
    assert len(upstream.requests) == 3 and "not sent" in run.err


def test_alert_lifecycle_with_a_fix_pr(
    tmp_path: Path, upstream: FakeAnthropic, github_api: FakeGitHub
) -> None:
    config = anthropic_only(tmp_path, upstream)
    env = {"GITHUB_TOKEN": "ghs_test"}
    upstream.world.retire("claude-opus-4-5")
    upstream.world.refuse("thinking", "claude-haiku-4-5", "thinking is not supported on this model")

    first = canary(tmp_path, config, env, as_json=True, **github_flags(github_api))
    assert first.status == 1, first.err
    findings = {
        (p["model"], p["check"], p["finding"]) for p in first.report["probes"] if p["finding"]
    }
    assert findings == {
        ("claude-opus-4-5", "served", "model-retired"),
        ("claude-haiku-4-5", "thinking", "capability-refused"),
    }
    skipped = [p for p in first.report["probes"] if p["verdict"] == "skipped"]
    assert skipped and {p["model"] for p in skipped} == {"claude-opus-4-5"}
    [issue] = github_api.open_issues("drift:canary")
    assert "claude-opus-4-5" in (issue.body or "") and "model-retired" in (issue.body or "")
    [pr] = github_api.open_pulls("driftgate/canary-anthropic")
    assert "drift:canary" in pr.labels and "breaking" in pr.labels
    proposed = json.loads(github_api.origin.read(pr.head, "proxy/templates/anthropic.json"))
    assert "claude-opus-4-5" not in proposed["models"]
    assert proposed["models"]["claude-haiku-4-5"]["capabilities"]["thinking"] is False
    assert f"/pull/{pr.number}" in (issue.body or "")

    again = canary(tmp_path, config, env, **github_flags(github_api))
    assert again.status == 1
    assert len(github_api.issues) == 1 and len(issue.comments) == 1
    assert issue.comments[0]["body"].startswith("Still diverging")
    assert len(github_api.pulls) == 1  # the same fix: the PR is left as it is

    upstream.world = type(upstream.world)()  # the provider fixed it
    recovered = canary(tmp_path, config, env, **github_flags(github_api))
    assert recovered.status == 0, recovered.out
    assert issue.state == "closed" and issue.comments[-1]["body"].startswith("Recovered")
    assert github_api.open_issues("drift:canary") == []


def test_a_refused_beta_alerts_without_a_pr_and_malformed_rate_headers_diverge(
    tmp_path: Path, upstream: FakeAnthropic, github_api: FakeGitHub
) -> None:
    upstream.world.refuse(
        "beta:context-1m-2025-08-07", message="Unexpected value for anthropic-beta"
    )
    upstream.world.rate_headers = "malformed"
    run = canary(
        tmp_path,
        anthropic_only(tmp_path, upstream),
        {"GITHUB_TOKEN": "ghs_test"},
        as_json=True,
        **github_flags(github_api),
    )
    assert run.status == 1
    findings = {p["finding"] for p in run.report["probes"] if p["finding"]}
    assert findings == {"beta-refused", "rate-limit-headers"}
    assert github_api.pulls == {} and len(github_api.open_issues("drift:canary")) == 1


@pytest.mark.parametrize(
    "behaviour", [Behaviour.status(529), Behaviour.status(401), Behaviour.reset()]
)
def test_an_error_changes_nothing_on_github_and_fails_the_run(
    tmp_path: Path, upstream: FakeAnthropic, github_api: FakeGitHub, behaviour: Behaviour
) -> None:
    config = anthropic_only(tmp_path, upstream)
    env = {"GITHUB_TOKEN": "ghs_test"}
    upstream.world.retire("claude-opus-4-5")
    assert canary(tmp_path, config, env, **github_flags(github_api)).status == 1
    [issue] = github_api.open_issues("drift:canary")
    writes = len(github_api.writes())
    # The world recovered, but one probe fails: never close (or comment) from incomplete answers.
    upstream.world = type(upstream.world)()
    upstream.script(behaviour)
    run = canary(tmp_path, config, env, **github_flags(github_api))
    assert run.status == 1 and "nothing was changed on GitHub" in run.out
    assert len(github_api.writes()) == writes and issue.state == "open"


def test_a_github_failure_before_any_write_changes_nothing(
    tmp_path: Path, upstream: FakeAnthropic, github_api: FakeGitHub
) -> None:
    upstream.world.retire("claude-opus-4-5")
    # A token without issues permission: GitHub's 403, not retried.
    github_api.fail_next(403, path="/issues", message="Resource not accessible by integration")
    run = canary(
        tmp_path,
        anthropic_only(tmp_path, upstream),
        {"GITHUB_TOKEN": "ghs_test"},
        **github_flags(github_api),
    )
    assert run.status == 1 and "driftgate: reading open drift:canary issues" in run.out
    assert github_api.writes() == []


def test_the_fix_pr_starts_from_the_repositorys_template_not_the_bundled_one(
    tmp_path: Path, upstream: FakeAnthropic, github_api: FakeGitHub
) -> None:
    # A maintainer curated a note on main since this driftgate was released.
    path = "proxy/templates/anthropic.json"
    approved = json.loads(github_api.origin.read("main", path))
    approved["notes"] = "curated on main"
    github_api.origin.commit_file("main", path, json.dumps(approved, indent=2) + "\n", "curate")
    upstream.world.retire("claude-opus-4-5")
    run = canary(
        tmp_path,
        anthropic_only(tmp_path, upstream),
        {"GITHUB_TOKEN": "ghs_test"},
        **github_flags(github_api),
    )
    assert run.status == 1
    [pr] = github_api.open_pulls("driftgate/canary-anthropic")
    proposed = json.loads(github_api.origin.read(pr.head, path))
    assert proposed["notes"] == "curated on main" and "claude-opus-4-5" not in proposed["models"]


def test_max_probes_is_shared_fairly_and_unprobed_capabilities_are_named(
    tmp_path: Path, upstream: FakeAnthropic, openai_upstream: FakeOpenAI
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    for name in ("anthropic", "openai"):
        doc = json.loads((BUNDLED_DIR / f"{name}.json").read_text())
        if name == "anthropic":
            doc["models"]["claude-opus-4-6"]["capabilities"]["output_config"] = True
        (templates / f"{name}.json").write_text(json.dumps(doc))
    config = write_config(
        tmp_path,
        ("anthropic", "anthropic", upstream.url, "sk-ant-canary-test"),
        ("openai", "openai", openai_upstream.base_url, "sk-openai-canary"),
    )
    run = canary(tmp_path, config, as_json=True, max_probes=4, templates=str(templates))
    assert run.status == 0, run.err
    sent = [(p["backend"], p["check"]) for p in run.report["probes"]]
    assert sorted(sent) == [("anthropic", "served")] * 2 + [("openai", "served")] * 2
    assert "anthropic: claimed, but the canary has no probe for: output_config" in run.err
