"""The target repository: clone or fetch, commit one file on a bot branch, force-push."""

from __future__ import annotations

import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import git

from driftgate.watchers.errors import PublishError

BOT_NAME = "driftgate-bot"
BOT_EMAIL = "driftgate-bot@users.noreply.github.com"
TOKEN_ENV = "DRIFTGATE_GIT_TOKEN"
# git asks this script for a username and a password; it answers from the environment, so the
# token lives only in the git child process's environment, never in a URL, .git/config or a file.
ASKPASS_SCRIPT = f"""#!/bin/sh
case "$1" in
  Username*) echo x-access-token ;;
  *) printf '%s\\n' "${TOKEN_ENV}" ;;
esac
"""


def _check_remote(remote: str) -> None:
    parts = urlsplit(remote)
    if parts.scheme in ("http", "https") and (parts.username or parts.password):
        raise PublishError(
            "the repository URL carries credentials; give the token in GITHUB_TOKEN instead"
        )


def _check_relative(path: str) -> PurePosixPath:
    pure = PurePosixPath(path)
    if pure.is_absolute() or not pure.parts or any(p in ("..", ".git") for p in pure.parts):
        raise PublishError(f"refusing to write {path!r}: not a plain path inside the repository")
    return pure


class Checkout:
    """One working copy of the target repository under the watcher's workdir."""

    def __init__(
        self, remote: str | Callable[[], str], directory: Path, token: str | None = None
    ) -> None:
        # A callable is asked once, at the first git operation (the clone URL from the API).
        if isinstance(remote, str):
            _check_remote(remote)
        self._remote = remote
        self.directory = directory
        self._token = token

    @property
    def remote(self) -> str:
        """The git URL pushed to and fetched from."""
        if not isinstance(self._remote, str):
            resolved = self._remote()
            _check_remote(resolved)
            self._remote = resolved
        return self._remote

    @contextmanager
    def _env(self) -> Iterator[dict[str, str]]:
        """Environment for git children: bot identity, no prompts, token through GIT_ASKPASS."""
        env = {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": BOT_NAME,
            "GIT_AUTHOR_EMAIL": BOT_EMAIL,
            "GIT_COMMITTER_NAME": BOT_NAME,
            "GIT_COMMITTER_EMAIL": BOT_EMAIL,
            # An empty credential.helper clears any configured helper, so no helper can store the token.
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "credential.helper",
            "GIT_CONFIG_VALUE_0": "",
        }
        if not self._token:
            yield env
            return
        with tempfile.TemporaryDirectory(prefix="driftgate-askpass-") as tmp:
            script = Path(tmp) / "askpass.sh"
            script.write_text(ASKPASS_SCRIPT)
            script.chmod(stat.S_IRWXU)
            yield {**env, "GIT_ASKPASS": str(script), TOKEN_ENV: self._token}

    def _git(self, repo: git.Repo, *args: str) -> str:
        with self._env() as env:
            try:
                out: str = repo.git.execute(["git", *args], env=env)
            except git.GitCommandError as exc:
                step = next((a for a in args if not a.startswith("-") and "=" not in a), "")
                raise PublishError(self._describe(exc, step)) from exc
        return out

    def _describe(self, exc: git.GitCommandError, step: str) -> str:
        stderr = str(exc.stderr or "").strip().splitlines()
        last = stderr[-1] if stderr else f"exit status {exc.status}"
        if self._token:
            last = last.replace(self._token, "****")
        return f"git {step} failed for {self.remote}: {last.removeprefix('stderr: ').strip()}"

    def sync(self) -> git.Repo:
        """Clone the remote into the directory, or fetch (force, prune) when already cloned."""
        with self._env() as env:
            try:
                if not (self.directory / ".git").exists():
                    self.directory.parent.mkdir(parents=True, exist_ok=True)
                    git.Repo.clone_from(self.remote, self.directory, env=env)
            except git.GitCommandError as exc:
                raise PublishError(self._describe(exc, "clone")) from exc
        repo = git.Repo(self.directory)
        self._git(repo, "remote", "set-url", "origin", self.remote)
        self._git(
            repo, "fetch", "--prune", "--force", "origin", "+refs/heads/*:refs/remotes/origin/*"
        )
        return repo

    def remote_sha(self, repo: git.Repo, branch: str) -> str | None:
        """The commit `origin/<branch>` points at after the last fetch, if the branch exists."""
        try:
            return str(repo.commit(f"refs/remotes/origin/{branch}").hexsha)
        except (git.BadName, ValueError):
            return None

    def others_commits(self, repo: git.Repo, base: str, branch: str) -> list[str]:
        """Authors of commits on origin/<branch> (not on origin/<base>) that the bot did not make."""
        if self.remote_sha(repo, branch) is None or self.remote_sha(repo, base) is None:
            return []
        span = f"refs/remotes/origin/{base}..refs/remotes/origin/{branch}"
        authors = self._git(repo, "log", "--format=%an <%ae>", span).splitlines()
        return sorted({a for a in authors if not a.endswith(f"<{BOT_EMAIL}>")})

    def commit_file(
        self, repo: git.Repo, *, base: str, branch: str, path: str, content: str, message: str
    ) -> str | None:
        """Branch from origin/<base>, write `path`, commit as the bot; None when nothing changed."""
        rel = _check_relative(path)
        if self.remote_sha(repo, base) is None:
            raise PublishError(f"the repository has no branch {base!r} to branch from")
        self._git(repo, "checkout", "--force", "-B", branch, f"refs/remotes/origin/{base}")
        self._git(repo, "clean", "-ffdx")
        target = (self.directory / rel).resolve()
        if not target.is_relative_to(self.directory.resolve()):
            raise PublishError(f"refusing to write {path!r}: it leaves the repository")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        self._git(repo, "add", "--", str(rel))
        if not self._git(repo, "status", "--porcelain", "--", str(rel)):
            return None
        self._git(repo, "-c", "commit.gpgsign=false", "commit", "--no-verify", "-q", "-m", message)
        return str(repo.head.commit.hexsha)

    def push(self, repo: git.Repo, branch: str) -> None:
        """Force-push `branch` to origin (the bot owns its branches)."""
        self._git(repo, "push", "--force", "--quiet", "origin", f"{branch}:refs/heads/{branch}")
