"""The fake GitHub's repository storage: a real bare git repository, driven by GitPython."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import git

IDENTITY = {
    "GIT_AUTHOR_NAME": "Fake GitHub",
    "GIT_AUTHOR_EMAIL": "noreply@github.invalid",
    "GIT_COMMITTER_NAME": "Fake GitHub",
    "GIT_COMMITTER_EMAIL": "noreply@github.invalid",
}


class MergeConflict(Exception):
    """The head branch does not merge cleanly into the base."""


def seed_origin(origin: Path, scratch: Path, files: dict[str, str], branch: str = "main") -> str:
    """Create a bare repository at `origin` whose `branch` holds `files`; returns the commit."""
    git.Repo.init(origin, bare=True, initial_branch=branch)
    work = Path(tempfile.mkdtemp(prefix="seed-", dir=scratch))
    try:
        repo = git.Repo.init(work, initial_branch=branch)
        for rel, text in files.items():
            target = work / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        repo.git.add("--all")
        repo.git.execute(
            ["git", "-c", "commit.gpgsign=false", "commit", "-q", "-m", "Initial templates"],
            env=IDENTITY,
        )
        repo.git.push(str(origin), f"{branch}:refs/heads/{branch}")
        return str(repo.head.commit.hexsha)
    finally:
        shutil.rmtree(work, ignore_errors=True)


class OriginRepo:
    """Branches, files and merges of the bare origin repository."""

    def __init__(self, path: Path, scratch: Path) -> None:
        self.path = path
        self.scratch = scratch
        self.repo = git.Repo(path)

    def branch_sha(self, branch: str) -> str | None:
        """The commit `branch` points at, or None when there is no such branch."""
        try:
            return str(self.repo.commit(f"refs/heads/{branch}").hexsha)
        except (git.BadName, ValueError):
            return None

    def ahead(self, base: str, head: str) -> int:
        """How many commits `head` has that `base` does not."""
        return int(self.repo.git.rev_list("--count", f"refs/heads/{base}..refs/heads/{head}"))

    def read(self, branch: str, path: str) -> str:
        """A file's text at the tip of `branch`."""
        return str(self.repo.git.show(f"refs/heads/{branch}:{path}", strip_newline_in_stdout=False))

    def log(self, branch: str) -> list[git.Commit]:
        """Commits of `branch`, newest first."""
        return list(self.repo.iter_commits(f"refs/heads/{branch}"))

    def merge(self, base: str, head: str, message: str) -> str:
        """Merge `head` into `base` with a merge commit (as GitHub's merge button does)."""
        work = Path(tempfile.mkdtemp(prefix="merge-", dir=self.scratch))
        try:
            clone = git.Repo.clone_from(str(self.path), work, branch=base)
            try:
                clone.git.execute(
                    [
                        "git",
                        "-c",
                        "commit.gpgsign=false",
                        "merge",
                        "--no-ff",
                        "-m",
                        message,
                        f"origin/{head}",
                    ],
                    env=IDENTITY,
                )
            except git.GitCommandError as exc:
                raise MergeConflict(str(exc.stderr)) from exc
            clone.git.push("origin", f"HEAD:refs/heads/{base}")
            return str(clone.head.commit.hexsha)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def commit_file(self, branch: str, path: str, text: str, message: str) -> str:
        """Commit `text` at `path` on top of `branch` as a person (not the bot) would push it."""
        work = Path(tempfile.mkdtemp(prefix="edit-", dir=self.scratch))
        try:
            clone = git.Repo.clone_from(str(self.path), work, branch=branch)
            target = work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            clone.git.add("--", path)
            clone.git.execute(
                ["git", "-c", "commit.gpgsign=false", "commit", "-q", "-m", message],
                env={
                    **IDENTITY,
                    "GIT_AUTHOR_NAME": "A Maintainer",
                    "GIT_AUTHOR_EMAIL": "maintainer@example.invalid",
                },
            )
            clone.git.push("origin", f"HEAD:refs/heads/{branch}")
            return str(clone.head.commit.hexsha)
        finally:
            shutil.rmtree(work, ignore_errors=True)
