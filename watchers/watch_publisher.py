"""The publisher a watcher other than npm uses: repository, API, remote and workdir from flags,
then the [watch] table; None when no repository is named (the watcher only reports)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from driftgate.proxy.errors import ConfigError
from driftgate.watchers.github import (
    DEFAULT_API_URL,
    MIN_WRITE_INTERVAL,
    build_github,
)
from driftgate.watchers.publish import Publisher, is_repo_name


class PublishFlags(Protocol):
    """The publishing flags a watcher's command line carries."""

    @property
    def repo(self) -> str | None: ...
    @property
    def github_api_url(self) -> str | None: ...
    @property
    def git_remote(self) -> str | None: ...
    @property
    def workdir(self) -> str | None: ...


def publisher_for(
    watch: Mapping[str, Any],
    flags: PublishFlags,
    home: Path,
    env: Mapping[str, str],
    *,
    min_write_interval: float = MIN_WRITE_INTERVAL,
) -> Publisher | None:
    """A Publisher for --repo / [watch] repo with GITHUB_TOKEN; ConfigError says what is missing."""
    repo = flags.repo or watch.get("repo")
    if repo is None:
        return None
    if not is_repo_name(repo):
        raise ConfigError(f"--repo must look like OWNER/NAME, got {repo!r}")
    token = env.get("GITHUB_TOKEN") or None
    if not token:
        raise ConfigError("publishing needs GITHUB_TOKEN in the environment (or leave out --repo)")
    api_url = str(flags.github_api_url or watch.get("github_api_url") or DEFAULT_API_URL).rstrip(
        "/"
    )
    remote = flags.git_remote or watch.get("git_remote")  # None: the API's clone_url
    workdir = flags.workdir or watch.get("workdir")
    return Publisher(
        repo=repo,
        remote=str(remote),
        workdir=Path(workdir).expanduser() if workdir else home / "work",
        github=build_github(token, api_url, min_write_interval=min_write_interval),
        token=token,
    )
