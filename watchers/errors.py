"""Every error the watchers raise on purpose, each with the CLI exit code it maps to."""

from __future__ import annotations

from driftgate.proxy.errors import DriftgateError


class WatchError(DriftgateError):
    """Base of every watcher error; `exit_code` is what the CLI exits with."""

    exit_code: int = 1


class RegistryError(WatchError):
    """The npm registry could not be reached or answered something unusable."""

    exit_code = 3


class IntegrityError(WatchError):
    """A tarball's bytes do not match the integrity the registry published (or none was published)."""

    exit_code = 4


class UnsafeArchive(WatchError):
    """A tarball breaks a safety rule (path, link, device, size or file-count limit)."""

    exit_code = 4


class ExtractionError(WatchError):
    """An extractor could not produce any usable facts from a package."""

    exit_code = 5


class StateError(WatchError):
    """The watcher's state file under DRIFTGATE_HOME cannot be read or written."""

    exit_code = 6


class SecretFound(WatchError):
    """Something about to leave the machine (commit, PR title or body) looks like a credential."""

    exit_code = 7


class PublishError(WatchError):
    """The target git repository or the GitHub API refused or failed a publishing step."""

    exit_code = 8


class RateLimited(PublishError):
    """GitHub's rate limit is exhausted for longer than the run is willing to wait."""

    exit_code = 9
