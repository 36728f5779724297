"""Checkout against real git repositories: a bare origin, and an HTTP remote that asks for auth."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path

import git
import pytest
from aiohttp import web

from driftgate.watchers.errors import PublishError
from driftgate.watchers.gitrepo import BOT_EMAIL, BOT_NAME, Checkout
from tests.fakes.server_thread import ServerThread

PATH = "proxy/templates/anthropic.json"


def test_clone_commit_push_then_fetch_sees_new_upstream_work(
    git_origin: Path, tmp_path: Path
) -> None:
    checkout = Checkout(str(git_origin), tmp_path / "work" / "repo")
    repo = checkout.sync()
    sha = checkout.commit_file(
        repo,
        base="main",
        branch="driftgate/anthropic",
        path=PATH,
        content='{"x": 1}\n',
        message="drift(anthropic): 1 -> 2",
    )
    assert sha is not None
    checkout.push(repo, "driftgate/anthropic")
    origin = git.Repo(git_origin)
    pushed = origin.commit("refs/heads/driftgate/anthropic")
    assert pushed.hexsha == sha
    assert (pushed.author.name, pushed.author.email) == (BOT_NAME, BOT_EMAIL)
    assert (pushed.committer.name, pushed.committer.email) == (BOT_NAME, BOT_EMAIL)
    assert origin.git.show(f"{sha}:{PATH}") == '{"x": 1}'

    # Someone else moves main; the next sync fetches it and the bot branch is rebuilt on top.
    other = git.Repo.clone_from(str(git_origin), tmp_path / "other")
    (tmp_path / "other" / "README.md").write_text("hello\n")
    other.git.add("README.md")
    other.git.execute(
        ["git", "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-qm", "readme"]
    )
    other.git.push("origin", "HEAD:refs/heads/main")
    repo = checkout.sync()
    again = checkout.commit_file(
        repo,
        base="main",
        branch="driftgate/anthropic",
        path=PATH,
        content='{"x": 2}\n',
        message="m",
    )
    assert again is not None
    assert repo.commit(again).parents[0].hexsha == other.head.commit.hexsha


def test_content_already_on_base_commits_nothing(git_origin: Path, tmp_path: Path) -> None:
    checkout = Checkout(str(git_origin), tmp_path / "repo")
    repo = checkout.sync()
    current = git.Repo(git_origin).git.show(f"main:{PATH}", strip_newline_in_stdout=False)
    assert (
        checkout.commit_file(repo, base="main", branch="b", path=PATH, content=current, message="m")
        is None
    )


def test_leftovers_in_the_workdir_do_not_leak_into_the_commit(
    git_origin: Path, tmp_path: Path
) -> None:
    checkout = Checkout(str(git_origin), tmp_path / "repo")
    repo = checkout.sync()
    (tmp_path / "repo" / "stray.txt").write_text("not ours\n")
    sha = checkout.commit_file(
        repo, base="main", branch="b", path=PATH, content="{}\n", message="m"
    )
    assert sha is not None
    assert [d.a_path for d in repo.commit(sha).diff(repo.commit(sha).parents[0])] == [PATH]


@pytest.mark.parametrize("bad", ["../escape.json", "/etc/passwd", ".git/config", ""])
def test_paths_outside_the_repository_are_refused(
    git_origin: Path, tmp_path: Path, bad: str
) -> None:
    checkout = Checkout(str(git_origin), tmp_path / "repo")
    repo = checkout.sync()
    with pytest.raises(PublishError, match="refusing to write"):
        checkout.commit_file(repo, base="main", branch="b", path=bad, content="{}", message="m")


def test_missing_base_branch_is_a_clear_error(git_origin: Path, tmp_path: Path) -> None:
    checkout = Checkout(str(git_origin), tmp_path / "repo")
    repo = checkout.sync()
    with pytest.raises(PublishError, match="no branch 'trunk'"):
        checkout.commit_file(repo, base="trunk", branch="b", path=PATH, content="{}", message="m")


def test_credentials_in_the_remote_url_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PublishError, match="GITHUB_TOKEN"):
        Checkout("https://bot:secret@github.com/o/r.git", tmp_path / "repo")


def test_unreachable_remote_is_one_line(tmp_path: Path) -> None:
    checkout = Checkout(str(tmp_path / "nowhere.git"), tmp_path / "repo")
    with pytest.raises(PublishError) as info:
        checkout.sync()
    assert "git clone failed" in str(info.value) and "\n" not in str(info.value)


class AuthRecorder:
    """An HTTP git remote that demands Basic auth, records what it got, then refuses."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        self.server = ServerThread(app)

    async def handle(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization")
        if auth is None:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="fake"'})
        self.seen.append(base64.b64decode(auth.removeprefix("Basic ")).decode())
        return web.Response(status=403, text="no")


@pytest.fixture
def auth_remote() -> Iterator[AuthRecorder]:
    recorder = AuthRecorder()
    recorder.server.start()
    try:
        yield recorder
    finally:
        recorder.server.stop()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_token_reaches_git_only_through_askpass(auth_remote: AuthRecorder, tmp_path: Path) -> None:
    token = "gh" + "s_" + "Sekr3t" * 7
    workdir = tmp_path / "work"
    checkout = Checkout(f"{auth_remote.server.url}/o/r.git", workdir / "repo", token=token)
    with pytest.raises(PublishError) as info:
        checkout.sync()
    assert auth_remote.seen and auth_remote.seen[-1] == f"x-access-token:{token}"
    assert token not in str(info.value)
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]
    assert leaked == []
