"""`driftgate watch npm` end to end: real Verdaccio, real git origin, fake GitHub API over HTTP."""

from __future__ import annotations

import io
import json
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import git
import pytest

from driftgate.watchers.npm.command import run_watch_npm
from driftgate.watchers.npm.settings import WatchFlags
from tests.fakes.github_api import FakeGitHub
from tests.fakes.npm_fixtures import Verdaccio, package_tgz, unique_package
from tests.fakes.sdk_packages import anthropic_sdk_files, anthropic_with, watch_config

pytestmark = pytest.mark.verdaccio
BRANCH = "driftgate/anthropic"
TEMPLATE = "proxy/templates/anthropic.json"
TOKEN = "test-token-not-a-secret"


@dataclass
class Result:
    code: int
    report: dict[str, Any]
    stderr: str

    @property
    def package(self) -> dict[str, Any]:
        (only,) = self.report["packages"]
        return dict(only)


@dataclass
class World:
    """One test's registry package, GitHub fake, origin repo and DRIFTGATE_HOME."""

    verdaccio: Verdaccio
    gh: FakeGitHub
    origin: Path
    tmp: Path
    package: str = field(default_factory=unique_package)
    sleeps: list[float] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return self.tmp / "home"

    def publish(self, version: str, files: dict[str, str]) -> None:
        self.verdaccio.publish_package(self.package, version, files)

    def watch(self, *, registry: str | None = None, **flags: Any) -> Result:
        watch_config(self.home, self.verdaccio.url, [(self.package, "anthropic", "anthropic-sdk")])
        wf = WatchFlags(
            repo=self.gh.full_name,
            git_remote=str(self.origin),
            github_api_url=self.gh.url,
            workdir=str(self.tmp / "work"),
            registry=registry,
            **flags,
        )
        env = {"DRIFTGATE_HOME": str(self.home), "GITHUB_TOKEN": TOKEN, "HOME": str(self.tmp)}
        out, err = io.StringIO(), io.StringIO()
        code = run_watch_npm(
            wf,
            config_path=None,
            env=env,
            once=True,
            dry_run=False,
            as_json=True,
            out=out,
            err=err,
            sleep=self.sleeps.append,
            min_write_interval=0,
        )
        return Result(code, json.loads(out.getvalue()), err.getvalue())

    def forget(self) -> None:
        """Lose the watcher state (as a CI runner without its cache would)."""
        (self.home / "state" / "npm.json").unlink()

    def branch_sha(self) -> str | None:
        return self.gh.origin.branch_sha(BRANCH)

    def branch_template(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.gh.origin.read(BRANCH, TEMPLATE))
        return doc


@pytest.fixture
def world(verdaccio: Verdaccio, github_api: FakeGitHub, git_origin: Path, tmp_path: Path) -> World:
    return World(verdaccio, github_api, git_origin, tmp_path)


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_a_new_release_opens_one_pr_and_running_again_changes_nothing(world: World) -> None:
    world.publish(
        "1.13.0",
        anthropic_with(add_models=["claude-new-1", "claude-new-2"], add_betas=["nb-2026-11-01"]),
    )
    first = world.watch()
    assert first.code == 0, first.stderr
    pkg = first.package
    assert pkg["status"] == "pr" and pkg["pr"]["action"] == "opened"
    assert pkg["versions"] == {"template": "1.12.0", "registry": "1.13.0"}
    assert "claude-new-1" in pkg["facts"]["models"] and "nb-2026-11-01" in pkg["facts"]["betas"]
    (pr,) = world.gh.open_pulls()
    assert pr.head == BRANCH and pr.base == "main"
    assert pr.title == f"drift(anthropic): {world.package} 1.12.0 -> 1.13.0: +2 models, +1 beta"
    assert set(pr.labels) == {"drift", "drift:npm"}
    assert (
        pr.body is not None and "| change | path | old | new |" in pr.body and "```diff" in pr.body
    )
    assert "<!-- driftgate:fingerprint=sha256:" in pr.body
    assert world.branch_template()["models"]["claude-new-1"]["needs_review"] is True
    commit = git.Repo(world.origin).commit(f"refs/heads/{BRANCH}")
    assert "1.12.0 -> 1.13.0" in str(commit.message) and commit.author.name == "driftgate-bot"
    sha, writes = world.branch_sha(), len(world.gh.writes())

    again = world.watch()  # the state remembers 1.13.0: nothing fetched, nothing sent
    assert again.code == 0 and again.package["status"] == "already-handled"
    world.forget()
    fresh = world.watch()  # rebaked from scratch: same fingerprint, so the open PR is left alone
    assert fresh.code == 0 and fresh.package["pr"]["action"] == "noop"
    assert len(world.gh.open_pulls()) == 1 and world.branch_sha() == sha
    assert len(world.gh.writes()) == writes


def test_the_template_version_itself_never_reaches_github(world: World) -> None:
    world.publish("1.12.0", anthropic_sdk_files())
    result = world.watch()
    assert result.code == 0 and result.package["status"] == "up-to-date"
    assert world.gh.writes() == [] and world.gh.pulls == {} and world.branch_sha() is None


def test_newer_drift_updates_the_open_pr_in_place(world: World) -> None:
    world.publish("1.13.0", anthropic_with(add_models=["claude-new-1"]))
    assert world.watch().package["pr"]["action"] == "opened"
    (pr,) = world.gh.open_pulls()
    number, body, sha = pr.number, pr.body, world.branch_sha()

    world.publish("1.14.0", anthropic_with(add_models=["claude-new-1", "claude-new-2"]))
    result = world.watch()
    assert result.code == 0 and result.package["pr"]["action"] == "updated"
    (pr,) = world.gh.open_pulls()
    assert pr.number == number
    assert pr.body != body and "claude-new-2" in (pr.body or "")
    assert "1.12.0 -> 1.14.0" in pr.title
    assert world.branch_sha() != sha  # force-pushed
    assert world.branch_template()["source"]["version"] == "1.14.0"


def test_a_pr_closed_unmerged_is_not_reopened_but_new_drift_opens_a_new_one(world: World) -> None:
    world.publish("1.13.0", anthropic_with(add_models=["claude-new-1"]))
    world.watch()
    (pr,) = world.gh.open_pulls()
    world.gh.close_pull(pr.number)

    world.forget()
    same = world.watch()
    assert same.code == 0 and same.package["pr"]["action"] == "skipped-closed"
    assert world.gh.open_pulls() == []

    world.publish("1.14.0", anthropic_with(add_models=["claude-new-1", "claude-new-2"]))
    newer = world.watch()
    assert newer.package["pr"]["action"] == "opened"
    (reopened,) = world.gh.open_pulls()
    assert reopened.number != pr.number


def test_after_a_merge_new_drift_opens_a_new_pr_against_the_merged_template(world: World) -> None:
    world.publish("1.13.0", anthropic_with(add_models=["claude-new-1"]))
    world.watch()
    (pr,) = world.gh.open_pulls()
    world.gh.merge_pull(pr.number)
    assert world.watch().package["status"] == "up-to-date"  # main now carries 1.13.0

    world.publish("1.14.0", anthropic_with(add_models=["claude-new-1", "claude-new-2"]))
    result = world.watch()
    assert result.package["pr"]["action"] == "opened"
    (second,) = world.gh.open_pulls()
    assert second.number != pr.number
    assert second.title.endswith("1.13.0 -> 1.14.0: +1 model")


def test_5xx_and_secondary_rate_limits_are_retried_then_succeed(world: World) -> None:
    world.publish("1.13.0", anthropic_with(add_models=["claude-new-1"]))
    world.gh.fail_next(502, times=2)
    world.gh.fail_next(403, {"Retry-After": "7"}, method="POST", path="/pulls")
    result = world.watch()
    assert result.code == 0, result.stderr
    assert result.package["pr"]["action"] == "opened"
    assert len(world.gh.open_pulls()) == 1
    assert 7 in world.sleeps  # Retry-After honoured
    assert [r.status for r in world.gh.requests].count(502) == 2


def test_a_nearly_exhausted_rate_limit_stops_before_touching_anything(world: World) -> None:
    world.publish("1.13.0", anthropic_with(add_models=["claude-new-1"]))
    world.gh.set_rate_limit(5)
    result = world.watch()
    assert result.code == 9
    assert result.stderr.count("\n") == 1 and "rate limit" in result.stderr
    assert world.gh.writes() == [] and world.branch_sha() is None


def test_the_secret_gate_refuses_a_credential_shaped_model_id(world: World) -> None:
    leaked = "sk-" + "ant-" + "api03-" + "Z" * 40
    world.publish("1.13.0", anthropic_with(add_models=[leaked]))
    result = world.watch()
    assert result.code == 7
    assert result.package["status"] == "error" and "credential" in result.package["error"]
    assert leaked not in result.stderr and leaked not in json.dumps(result.report)
    assert world.gh.writes() == [] and world.branch_sha() is None


def test_a_trivial_release_is_recorded_then_folded_into_the_next_pr(world: World) -> None:
    world.publish("1.12.1", anthropic_sdk_files())
    trivial = world.watch()
    assert trivial.code == 0 and trivial.package["status"] == "trivial-recorded"
    assert [r["version"] for r in trivial.package["folded"]] == ["1.12.1"]
    assert world.gh.writes() == [] and world.branch_sha() is None

    world.publish("1.13.0", anthropic_with(add_models=["claude-new-1"]))
    result = world.watch()
    assert result.package["pr"]["action"] == "opened"
    (pr,) = world.gh.open_pulls()
    assert "`1.12.1`" in (pr.body or "") and "folded" in (pr.body or "")


def test_on_trivial_pr_opens_a_pr_with_auto_merge(world: World) -> None:
    world.publish("1.12.1", anthropic_sdk_files())
    result = world.watch(on_trivial="pr", auto_merge="additive")
    assert result.code == 0, result.stderr
    (pr,) = world.gh.open_pulls()
    assert pr.title.endswith("1.12.0 -> 1.12.1: version bump only")
    assert pr.auto_merge is not None


def test_registry_down_fails_with_one_line_and_leaves_the_open_pr_alone(world: World) -> None:
    world.publish("1.13.0", anthropic_with(add_models=["claude-new-1"]))
    world.watch()
    (pr,) = world.gh.open_pulls()
    before = (pr.body, pr.title, pr.updated_at, world.branch_sha(), len(world.gh.writes()))
    world.forget()
    result = world.watch(registry=_closed_port_url())
    assert result.code == 3
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(
        "driftgate: watch npm: 1 of 1"
    )
    (still,) = world.gh.open_pulls()
    assert (
        still.body,
        still.title,
        still.updated_at,
        world.branch_sha(),
        len(world.gh.writes()),
    ) == before
    assert all(not c for c in [p.comments for p in world.gh.pulls.values()])


def test_a_tampered_tarball_is_refused(world: World) -> None:
    world.publish("1.13.0", anthropic_with(add_models=["claude-new-1"]))
    world.verdaccio.tamper_tarball(
        world.package,
        "1.13.0",
        package_tgz(world.package, "1.13.0", anthropic_with(add_models=["claude-evil"])),
    )
    result = world.watch()
    assert result.code == 4 and "integrity" in result.package["error"].lower()
    assert world.gh.writes() == [] and world.branch_sha() is None
