"""Class B end to end: requests through a running gateway -> shape log -> `driftgate watch shapes`
-> one PR on the fake GitHub; a rerun with no new traffic is a no-op (no GitHub call); new traffic
updates the same PR with the counts summed; a failed publish leaves the watermark where it was."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from driftgate.proxy.observe.shape_settings import SHAPES_DB
from driftgate.watchers.shapes.command import ShapesFlags, run_watch_shapes
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.github_api import FakeGitHub

TOKEN = "test-token-not-a-secret"
BRANCH = "driftgate/shapes-claude-code"
UA = "claude-cli/2.1.332 (external, cli)"
PRIVATE = "a private sentence 5150"


def _claude_code_request(url: str, extra: dict[str, Any] | None = None) -> None:
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 16,
        "system": [{"type": "text", "text": PRIVATE}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": PRIVATE}]},
            {"role": "system", "content": PRIVATE},  # mid-conversation, as 2.1.332 sends
            {"role": "user", "content": "go on"},
        ],
        "tools": [
            {"name": "Read", "input_schema": {"type": "object"}},
            {"name": "ToolSearch", "input_schema": {"type": "object"}},
        ],
        **(extra or {}),
    }
    headers = {"user-agent": UA, "anthropic-version": "2023-06-01", "x-api-key": "sk-ant-test-0000",
               "anthropic-beta": "context-management-2025-06-27"}  # fmt: skip
    httpx.post(f"{url}/v1/messages", json=body, headers=headers, timeout=10)  # any answer will do


def _traffic(gateway_factory: Callable[..., Any], fake: FakeAnthropic, home: Path,
             extra: dict[str, Any] | None = None) -> None:  # fmt: skip
    from driftgate.proxy.observe.shape_settings import ShapeSettings

    server = gateway_factory(backends=[fake.backend()], shapes=ShapeSettings(path=home / SHAPES_DB))
    for _ in range(3):
        _claude_code_request(server.url, extra)
    server.stop()  # flushes the shape log


def _watch(
    gh: FakeGitHub, origin: Path | None, tmp: Path, home: Path, *, expect: int = 0,
    dry_run: bool = False,
) -> tuple[int, dict[str, Any]]:  # fmt: skip
    flags = ShapesFlags(repo=gh.full_name, git_remote=origin and str(origin),
                        github_api_url=gh.url, workdir=str(tmp / "work"), dry_run=dry_run)  # fmt: skip
    env = {"DRIFTGATE_HOME": str(home), "GITHUB_TOKEN": TOKEN, "HOME": str(tmp)}
    out, err = io.StringIO(), io.StringIO()
    code = run_watch_shapes(flags, config_path=None, env=env, as_json=True, out=out, err=err)
    assert code == expect, err.getvalue()
    return code, json.loads(out.getvalue()) if out.getvalue() else {}


def _entry(report: dict[str, Any]) -> dict[str, Any]:
    (entry,) = [t for t in report["templates"] if t["template"] == "claude-code"]
    return dict(entry)


def test_live_shapes_become_one_pr_then_a_noop_then_an_update(
    gateway_factory: Callable[..., Any],
    fake_anthropic: FakeAnthropic,
    github_api: FakeGitHub,
    git_origin: Path,
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    _traffic(gateway_factory, fake_anthropic, home)

    _, report = _watch(github_api, git_origin, tmp_path, home)
    entry = _entry(report)
    assert entry["pr"]["action"] == "opened"
    assert entry["added"]["roles"] == ["system", "user"]
    assert entry["added"]["tool_names"] == ["ToolSearch"]  # Read is declared by the release
    assert entry["added"]["betas"] == ["context-management-2025-06-27"]
    assert "context_hints" not in entry["added"]["fields"]
    (pr,) = github_api.open_pulls(BRANCH)
    assert "drift:shapes" in pr.labels
    assert pr.body and "| 3 |" in pr.body and "live shapes" in pr.body
    # The translation to OpenAI-kind backends and what it does with the mid-conversation system role
    assert "Not handled by the gateway's translation" in pr.body or entry["untranslated"] == []
    template = json.loads(github_api.origin.read(BRANCH, "proxy/templates/claude-code.json"))
    observed = template["observed"]
    assert observed["tool_names"]["ToolSearch"]["source"] == "shapes"
    assert observed["tool_names"]["ToolSearch"]["count"] == 3
    assert observed["tool_names"]["ToolSearch"]["client_versions"] == ["2.1.332"]
    assert "Read" in template["tools"] and "Read" not in observed["tool_names"]  # never overwritten
    assert PRIVATE not in pr.body and PRIVATE not in json.dumps(template)

    writes = len(github_api.writes())
    requests = len(github_api.requests)
    _, again = _watch(github_api, git_origin, tmp_path, home)
    assert again["new_requests"] == 0 and again["templates"] == []
    assert len(github_api.requests) == requests  # not even a read: nothing new since the last run
    assert len(github_api.writes()) == writes

    _traffic(gateway_factory, fake_anthropic, home, extra={"context_hints": {"mode": "fast"}})
    _, newer = _watch(github_api, git_origin, tmp_path, home)
    entry = _entry(newer)
    assert entry["pr"]["action"] == "updated" and entry["pr"]["number"] == pr.number
    assert "context_hints" in entry["added"]["fields"]  # against the approved template on main
    template = json.loads(github_api.origin.read(BRANCH, "proxy/templates/claude-code.json"))
    assert template["observed"]["fields"]["context_hints"]["types"] == ["object"]
    assert template["observed"]["tool_names"]["ToolSearch"]["count"] == 6
    first = observed["tool_names"]["ToolSearch"]["first_seen"]
    # the first run's first seen survives in the updated PR
    assert template["observed"]["tool_names"]["ToolSearch"]["first_seen"] == first
    assert len(github_api.open_pulls()) == 1


def test_a_failed_publish_or_a_dry_run_leaves_the_watermark_where_it_was(
    gateway_factory: Callable[..., Any],
    fake_anthropic: FakeAnthropic,
    github_api: FakeGitHub,
    git_origin: Path,
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    _traffic(gateway_factory, fake_anthropic, home)
    state = home / "state" / "shapes.json"

    _, preview = _watch(github_api, git_origin, tmp_path, home, dry_run=True)
    assert preview["new_requests"] == 3 and preview["watermark"] == "kept"
    assert not state.exists() and github_api.open_pulls() == []

    github_api.fail_next(422, method="POST", path="/pulls", times=1, message="Validation Failed")
    _watch(github_api, git_origin, tmp_path, home, expect=8)  # GitHub refused
    assert not state.exists() and github_api.open_pulls() == []

    _, report = _watch(github_api, git_origin, tmp_path, home)  # the same shapes, taken again
    assert report["new_requests"] == 3 and report["watermark"] == "advanced"
    assert _entry(report)["pr"]["action"] == "opened"
    template = json.loads(github_api.origin.read(BRANCH, "proxy/templates/claude-code.json"))
    assert template["observed"]["tool_names"]["ToolSearch"]["count"] == 3  # not counted twice
    assert state.exists()


def test_without_git_remote_the_repository_clone_url_is_pushed_to(
    gateway_factory: Callable[..., Any],
    fake_anthropic: FakeAnthropic,
    github_api: FakeGitHub,
    git_origin: Path,
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    _traffic(gateway_factory, fake_anthropic, home)
    github_api.clone_url = str(git_origin)  # not on the API's host: only the API says where
    assert not github_api.url.startswith(str(git_origin))
    _, report = _watch(github_api, None, tmp_path, home)
    assert _entry(report)["pr"]["action"] == "opened"
    assert github_api.origin.branch_sha(BRANCH) is not None
