"""The fake GitHub API itself: state, git-backed merges, headers, and its OpenAPI response check."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import github
import httpx
import pytest

from driftgate.watchers.github import build_github
from tests.fakes.github_api import FakeGitHub
from tests.fakes.github_openapi import ResponseShapeError, check_response, example

ROOT = Path(__file__).resolve().parents[2]


def client(gh: FakeGitHub, token: str | None = "t") -> github.Github:
    return build_github(token, gh.url, sleep=lambda _s: None, min_write_interval=0)


def push_branch(gh: FakeGitHub, tmp_path: Path, branch: str, text: str) -> None:
    import git

    work = tmp_path / f"push-{branch.replace('/', '-')}"
    repo = git.Repo.clone_from(str(gh.origin.path), work)
    (work / "proxy" / "templates" / "anthropic.json").write_text(text)
    repo.git.execute(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "change"]
    )
    repo.git.push("origin", f"HEAD:refs/heads/{branch}")


def test_validator_rejects_a_wrong_shape() -> None:
    good = example("label")
    check_response("/repos/{owner}/{repo}/labels/{name}", "GET", 200, good)
    bad = dict(good, color=123)
    with pytest.raises(ResponseShapeError, match="color"):
        check_response("/repos/{owner}/{repo}/labels/{name}", "GET", 200, bad)
    missing = {k: v for k, v in example("pull-request").items() if k != "head"}
    with pytest.raises(ResponseShapeError, match="'head' is a required property"):
        check_response("/repos/{owner}/{repo}/pulls/{pull_number}", "GET", 200, missing)
    with pytest.raises(ResponseShapeError, match="not an operation"):
        check_response("/repos/{owner}/{repo}/no-such-thing", "GET", 200, {})


def test_an_invalid_response_is_recorded_and_answered_as_500(github_api: FakeGitHub) -> None:
    github_api.labels["broken"] = {"name": "broken"}  # a label without id, url, color...
    response = httpx.get(f"{github_api.url}/repos/{github_api.full_name}/labels")
    assert response.status_code == 500
    assert (
        github_api.validation_errors
        and "'id' is a required property" in github_api.validation_errors[0]
    )
    github_api.validation_errors.clear()  # this test made the error on purpose


def test_the_fixture_fails_a_test_whose_responses_were_invalid(tmp_path: Path) -> None:
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(
        textwrap.dedent(
            """
            import httpx

            def test_inner(github_api):
                github_api.labels["broken"] = {"name": "broken"}
                httpx.get(f"{github_api.url}/repos/{github_api.full_name}/labels")
            """
        )
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.fakes.github_fixtures",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(test_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "fake GitHub sent responses GitHub would not" in run.stdout


def test_every_response_carries_rate_limit_headers(github_api: FakeGitHub) -> None:
    base = f"{github_api.url}/repos/{github_api.full_name}"
    ok = httpx.get(base)
    missing = httpx.get(f"{base}/pulls/999")
    assert (ok.status_code, missing.status_code) == (200, 404)
    for response in (ok, missing):
        for header in ("Limit", "Remaining", "Reset", "Used", "Resource"):
            assert f"X-RateLimit-{header}" in response.headers
    assert (
        int(missing.headers["X-RateLimit-Remaining"])
        == int(ok.headers["X-RateLimit-Remaining"]) - 1
    )


def test_pulls_lifecycle_through_pygithub(github_api: FakeGitHub, tmp_path: Path) -> None:
    push_branch(github_api, tmp_path, "feature", "{}\n")
    repo = client(github_api).get_repo(github_api.full_name)
    pr = repo.create_pull(base="main", head="feature", title="t", body="b")
    with pytest.raises(github.GithubException) as info:
        repo.create_pull(base="main", head="feature", title="again", body="b")
    assert info.value.status == 422
    head = f"{github_api.owner}:feature"
    assert [p.number for p in repo.get_pulls(state="open", head=head)] == [pr.number]
    assert list(repo.get_pulls(state="open", head=f"{github_api.owner}:other")) == []
    pr.add_to_labels("drift")
    pr.edit(title="t2")
    pr.create_issue_comment("hello")
    fresh = repo.get_pull(pr.number)
    assert fresh.title == "t2" and [label.name for label in fresh.labels] == ["drift"]
    assert [c.body for c in fresh.get_issue_comments()] == ["hello"]
    assert fresh.merge().merged
    assert github_api.origin.read("main", "proxy/templates/anthropic.json") == "{}\n"
    assert repo.get_pull(pr.number).merged
    assert list(repo.get_pulls(state="open", head=head)) == []


def test_scripted_failures_and_auth(github_api: FakeGitHub) -> None:
    base = f"{github_api.url}/repos/{github_api.full_name}"
    github_api.fail_next(502, times=2)
    assert [httpx.get(base).status_code for _ in range(3)] == [502, 502, 200]
    github_api.fail_next(403, {"Retry-After": "5"})
    limited = httpx.get(base)
    assert limited.status_code == 403 and limited.headers["Retry-After"] == "5"
    assert "secondary rate limit" in limited.json()["message"]
    anonymous = httpx.post(f"{base}/labels", json={"name": "x", "color": "ffffff"})
    assert anonymous.status_code == 401 and "x" not in github_api.labels
    github_api.set_rate_limit(0)
    exhausted = httpx.get(base)
    assert exhausted.status_code == 403 and exhausted.headers["X-RateLimit-Remaining"] == "0"
    assert [r.status for r in github_api.requests][-1] == 403


def test_auto_merge_mutation(github_api: FakeGitHub, tmp_path: Path) -> None:
    push_branch(github_api, tmp_path, "feature", "{}\n")
    repo = client(github_api).get_repo(github_api.full_name)
    pr = repo.create_pull(base="main", head="feature", title="t", body="b")
    pr.enable_automerge(merge_method="SQUASH")
    assert github_api.pulls[pr.number].auto_merge is not None
    assert repo.get_pull(pr.number).auto_merge is not None
    github_api.close_pull(pr.number)
    with pytest.raises(github.GithubException):
        pr.enable_automerge()
