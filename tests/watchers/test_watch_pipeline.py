"""The watch pipeline against a real Verdaccio: compare, fetch, extract, rebake, diff, decide, publish."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from driftgate.proxy.templates import BUNDLED_DIR, validate_template
from driftgate.watchers.extractors import extractors
from driftgate.watchers.npm.registry import NpmRegistry
from driftgate.watchers.npm.watch import NpmWatcher, WatchedPackage, WatchSettings
from driftgate.watchers.publish import PublishResult, PullRequestPlan
from driftgate.watchers.report import RunReport
from driftgate.watchers.state import WatchState
from driftgate.watchers.template_sources import DirectoryTemplates
from tests.fakes.npm_fixtures import Verdaccio, package_tgz, unique_package
from tests.fakes.sdk_packages import (
    CLAUDE_CODE_EXTRA,
    anthropic_sdk_files,
    anthropic_with,
    claude_code_files,
)

pytestmark = pytest.mark.verdaccio


class RecordingPublisher:
    """Stands in for the GitHub publisher at its seam: records every plan, opens PR #1, #2, ..."""

    def __init__(self) -> None:
        self.plans: list[PullRequestPlan] = []

    def publish(self, plan: PullRequestPlan) -> PublishResult:
        self.plans.append(plan)
        n = len(self.plans)
        return PublishResult("opened", n, f"https://github.invalid/o/r/pull/{n}")


@pytest.fixture
def templates_dir(tmp_path: Path) -> Path:
    out = tmp_path / "templates"
    shutil.copytree(BUNDLED_DIR, out)
    return out


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


Run = Callable[..., RunReport]


@pytest.fixture
def run(verdaccio: Verdaccio, templates_dir: Path, tmp_path: Path, http: httpx.Client) -> Run:
    """One pass over `packages` with fresh registry client, shared state file and the given settings."""

    def go(
        packages: list[WatchedPackage],
        publisher: RecordingPublisher | None = None,
        compat: Callable[[str, str], str] | None = None,
        **settings: Any,
    ) -> RunReport:
        watcher = NpmWatcher(
            registry=NpmRegistry(verdaccio.url, client=http, cache_dir=tmp_path / "cache"),
            extractors=extractors(),
            templates=DirectoryTemplates(templates_dir),
            state=WatchState.load(tmp_path / "state" / "npm.json"),
            settings=WatchSettings(**settings),
            publisher=publisher,
            clock=lambda: datetime(2026, 11, 24, 21, 0, tzinfo=UTC),
            compat=compat,
        )
        return watcher.run(packages)

    return go


def _anthropic(name: str) -> WatchedPackage:
    return WatchedPackage(name, "anthropic", extractor="anthropic-sdk")


def test_a_tag_at_the_template_version_is_up_to_date_and_fetches_only_dist_tags(
    verdaccio: Verdaccio, run: Run
) -> None:
    name = unique_package()
    verdaccio.publish_package(name, "1.12.0", anthropic_sdk_files())
    publisher = RecordingPublisher()
    report = run([_anthropic(name)], publisher)
    (o,) = report.outcomes
    assert (o.status, o.registry_version, o.template_version) == ("up-to-date", "1.12.0", "1.12.0")
    assert (
        o.facts is not None
        and "claude-opus-4-6" in o.facts["models"]
        and o.facts_from == "template"
    )
    assert publisher.plans == []
    assert 0 < o.bytes_transferred < 2_000
    assert report.exit_code == 0


def test_a_new_release_with_new_models_becomes_one_pr_then_is_not_fetched_again(
    verdaccio: Verdaccio, run: Run
) -> None:
    name = unique_package()
    verdaccio.publish_package(
        name,
        "1.13.0",
        anthropic_with(add_models=["claude-new-1", "claude-new-2"], add_betas=["nb-2026-11-01"]),
    )
    publisher = RecordingPublisher()
    first = run([_anthropic(name)], publisher)
    (o,) = first.outcomes
    assert o.status == "pr" and o.severity == "additive"
    assert o.new_models == ("claude-new-1", "claude-new-2")
    assert o.pr is not None and o.pr.action == "opened" and o.pr.number == 1
    (plan,) = publisher.plans
    assert plan.title == f"drift(anthropic): {name} 1.12.0 -> 1.13.0: +2 models, +1 beta"
    assert plan.labels == ("drift", "drift:npm")
    candidate = json.loads(plan.content)
    validate_template(candidate)
    assert candidate["models"]["claude-new-1"]["needs_review"] is True
    assert candidate["models"]["claude-opus-4-6"]["pricing"]["input"] == 5.0  # curated, kept
    assert candidate["source"]["integrity"].startswith("sha512-")

    second = run([_anthropic(name)], publisher)
    assert second.outcomes[0].status == "already-handled"
    assert len(publisher.plans) == 1
    assert second.outcomes[0].bytes_transferred < 2_000  # dist-tags only


def test_dry_run_plans_the_pr_and_records_nothing(
    verdaccio: Verdaccio, run: Run, tmp_path: Path
) -> None:
    name = unique_package()
    verdaccio.publish_package(name, "1.13.0", anthropic_with(add_models=["claude-new-1"]))
    for _ in range(2):  # a dry run leaves no state behind, so the second plans the same PR
        (o,) = run([_anthropic(name)], None, dry_run=True).outcomes
        assert o.status == "dry-run" and o.pr is not None and o.pr.action is None
        assert "claude-new-1" in o.pr.body
    assert not (tmp_path / "state" / "npm.json").exists()


def test_a_trivial_release_is_recorded_then_folded_into_the_next_pr(
    verdaccio: Verdaccio, run: Run
) -> None:
    name = unique_package()
    publisher = RecordingPublisher()
    verdaccio.publish_package(name, "1.12.1", anthropic_sdk_files())
    (o,) = run([_anthropic(name)], publisher).outcomes
    assert (o.status, o.severity) == ("trivial-recorded", "trivial")
    assert [r.version for r in o.folded] == ["1.12.1"]
    assert publisher.plans == []

    verdaccio.publish_package(name, "1.13.0", anthropic_with(add_models=["claude-new-1"]))
    (o,) = run([_anthropic(name)], publisher).outcomes
    assert o.status == "pr"
    (plan,) = publisher.plans
    assert "1.12.0 -> 1.13.0" in plan.title
    assert "`1.12.1`" in plan.body and "folded" in plan.body
    assert "Folded trivial releases: 1.12.1" in plan.commit_message


def test_on_trivial_pr_opens_an_auto_mergeable_pr(verdaccio: Verdaccio, run: Run) -> None:
    name = unique_package()
    verdaccio.publish_package(name, "1.12.1", anthropic_sdk_files())
    publisher = RecordingPublisher()
    (o,) = run([_anthropic(name)], publisher, on_trivial="pr", auto_merge="additive").outcomes
    assert o.status == "pr" and o.severity == "trivial"
    (plan,) = publisher.plans
    assert plan.title.endswith(": version bump only")
    assert plan.auto_merge is True


def test_breaking_drift_is_labelled_and_never_auto_merged(verdaccio: Verdaccio, run: Run) -> None:
    name = unique_package()
    verdaccio.publish_package(name, "1.13.0", anthropic_with(drop_models=["claude-opus-4-5"]))
    publisher = RecordingPublisher()
    (o,) = run([_anthropic(name)], publisher, auto_merge="additive").outcomes
    assert o.severity == "breaking" and o.removed_models == ("claude-opus-4-5",)
    (plan,) = publisher.plans
    assert "breaking" in plan.labels and plan.auto_merge is False
    assert "### Removed (breaking)" in plan.body


def test_an_extractor_that_finds_nothing_reports_drift_to_look_at(
    verdaccio: Verdaccio, run: Run
) -> None:
    name = unique_package()
    files = anthropic_with(add_models=["claude-new-1"])
    files["resources/beta/beta.d.ts"] = (
        "export type SomethingElse = 'x';\n"  # type renamed upstream
    )
    verdaccio.publish_package(name, "1.13.0", files)
    publisher = RecordingPublisher()
    (o,) = run([_anthropic(name)], publisher).outcomes
    assert o.status == "pr"
    assert any("AnthropicBeta" in p for p in o.problems)
    (plan,) = publisher.plans
    assert "drift:extractor" in plan.labels and "### Extractor problems" in plan.body
    # The betas it could not read kept their approved values: never an empty template.
    assert (
        json.loads(plan.content)["api"]["betas"]
        == json.loads((BUNDLED_DIR / "anthropic.json").read_text())["api"]["betas"]
    )
    # Not remembered as handled: the next pass looks again (a fixed extractor gets its chance),
    # and proposes the identical candidate meanwhile, which the publisher treats as a no-op.
    (again,) = run([_anthropic(name)], publisher).outcomes
    assert again.status == "pr" and publisher.plans[1].fingerprint == plan.fingerprint


class ExplodingExtractor:
    """A third-party extractor with a bug: it raises on any package."""

    name = "exploding"
    package = "@drifttest/exploding"
    template = "anthropic"

    def extract(self, files: Any, manifest: Any) -> Any:
        raise KeyError("Model")


def test_an_extractor_that_raises_is_drift_to_look_at_not_a_crash(
    verdaccio: Verdaccio, templates_dir: Path, tmp_path: Path, http: httpx.Client
) -> None:
    name = unique_package()
    verdaccio.publish_package(name, "1.13.0", anthropic_with(add_models=["claude-new-1"]))
    publisher = RecordingPublisher()
    watcher = NpmWatcher(
        registry=NpmRegistry(verdaccio.url, client=http, cache_dir=tmp_path / "cache"),
        extractors={name: ExplodingExtractor()},
        templates=DirectoryTemplates(templates_dir),
        state=WatchState.load(tmp_path / "state" / "npm.json"),
        settings=WatchSettings(),
        publisher=publisher,
    )
    (o,) = watcher.run([WatchedPackage(name, "anthropic")]).outcomes
    assert o.status == "pr" and o.exit_code == 0
    assert o.problems == ("extractor exploding failed: KeyError: 'Model'",)
    (plan,) = publisher.plans
    assert "drift:extractor" in plan.labels and "extractor needs attention" in plan.title
    # Every fact kept its approved value; only source moved.
    approved = json.loads((BUNDLED_DIR / "anthropic.json").read_text())
    candidate = json.loads(plan.content)
    assert candidate["models"] == approved["models"] and candidate["api"] == approved["api"]
    assert candidate["source"]["version"] == "1.13.0"


def test_one_failing_package_is_reported_and_the_others_go_on(
    verdaccio: Verdaccio, run: Run
) -> None:
    missing = unique_package("missing")
    good = unique_package("cc")
    verdaccio.publish_package(
        good,
        "2.1.200",
        claude_code_files({"Bash": ["command"], "NewTool": ["x"]}),
        CLAUDE_CODE_EXTRA,
    )
    publisher = RecordingPublisher()
    report = run(
        [_anthropic(missing), WatchedPackage(good, "claude-code", extractor="claude-code")],
        publisher,
    )
    bad, ok = report.outcomes
    assert bad.status == "error" and "not found" in (bad.error or "")
    assert bad.exit_code == 3
    assert ok.status == "pr" and len(publisher.plans) == 1
    assert report.exit_code == 3
    reason = report.reason()
    assert reason is not None and "\n" not in reason and missing in reason


def test_tampered_integrity_is_refused_and_nothing_is_published(
    verdaccio: Verdaccio, run: Run
) -> None:
    name = unique_package()
    verdaccio.publish_package(name, "1.13.0", anthropic_with(add_models=["claude-new-1"]))
    evil = package_tgz(name, "1.13.0", anthropic_with(add_models=["claude-evil"]))
    verdaccio.tamper_tarball(name, "1.13.0", evil)
    publisher = RecordingPublisher()
    report = run([_anthropic(name)], publisher)
    (o,) = report.outcomes
    assert o.status == "error" and o.exit_code == 4 and "integrity" in (o.error or "").lower()
    assert publisher.plans == []
    # Not marked as handled: the next run tries again.
    assert run([_anthropic(name)], publisher).outcomes[0].status == "error"


def test_a_credential_shaped_model_id_stops_even_a_dry_run(verdaccio: Verdaccio, run: Run) -> None:
    name = unique_package()
    leaked = "sk-" + "ant-" + "api03-" + "Q" * 40
    verdaccio.publish_package(name, "1.13.0", anthropic_with(add_models=[leaked]))
    (o,) = run([_anthropic(name)], None, dry_run=True).outcomes
    assert o.status == "error" and o.exit_code == 7
    assert leaked not in (o.error or "") and o.pr is None


def test_a_missing_dist_tag_is_an_error_naming_the_tags(verdaccio: Verdaccio, run: Run) -> None:
    name = unique_package()
    verdaccio.publish_package(name, "1.12.0", anthropic_sdk_files())
    (o,) = run(
        [WatchedPackage(name, "anthropic", tags=("next",), extractor="anthropic-sdk")],
        None,
        dry_run=True,
    ).outcomes
    assert o.status == "error" and "'next'" in (o.error or "") and "latest" in (o.error or "")
    # The report still says what was compared as far as the run got.
    assert (o.template_version, o.registry_version) == ("1.12.0", None)


def test_a_client_release_pr_carries_its_compat_report(verdaccio: Verdaccio, run: Run) -> None:
    name = unique_package("cc")
    verdaccio.publish_package(
        name, "2.1.300", claude_code_files({"Bash": ["command"], "ToolSearch": ["query"]}),
        CLAUDE_CODE_EXTRA,
    )  # fmt: skip
    anthropic = unique_package()
    verdaccio.publish_package(anthropic, "1.13.0", anthropic_with(add_models=["claude-new-1"]))
    asked: list[tuple[str, str]] = []

    def compat(package: str, version: str) -> str:
        asked.append((package, version))
        return (
            f"### Compat run: `{package}@{version}`\n\n- direct to the echo upstream: completed\n"
        )

    publisher = RecordingPublisher()
    run([WatchedPackage(name, "claude-code", extractor="claude-code"), _anthropic(anthropic)],
        publisher, compat=compat)  # fmt: skip
    assert asked == [(name, "2.1.300")]  # client templates only
    client_plan, sdk_plan = publisher.plans
    assert f"### Compat run: `{name}@2.1.300`" in client_plan.body
    assert "Compat run" not in sdk_plan.body
