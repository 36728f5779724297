"""What the npm watcher remembers between runs: versions already handled, trivial releases to fold."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from driftgate.watchers.atomic_file import write_atomically
from driftgate.watchers.errors import StateError

STATE_VERSION = 1


@dataclass(frozen=True)
class TrivialRelease:
    """A release whose extracted facts matched the template: recorded, not PR'd, folded later."""

    package: str
    version: str
    base: str  # the template's source.version when it was recorded; folded only while still current
    integrity: str | None
    observed_at: str

    @classmethod
    def from_json(cls, raw: Any) -> TrivialRelease:
        """Parse one recorded release; StateError when the entry is malformed."""
        if not isinstance(raw, dict):
            raise StateError(f"state: trivial release entry is not an object: {raw!r}")
        try:
            return cls(
                package=str(raw["package"]),
                version=str(raw["version"]),
                base=str(raw["base"]),
                integrity=raw.get("integrity"),
                observed_at=str(raw.get("observed_at", "")),
            )
        except KeyError as exc:
            raise StateError(f"state: trivial release entry lacks {exc.args[0]!r}") from exc


@dataclass
class WatchState:
    """Last handled version per (package, tag) and pending trivial releases per template."""

    path: Path
    seen: dict[str, dict[str, str]] = field(default_factory=dict)
    trivial: dict[str, list[TrivialRelease]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> WatchState:
        """Read the state at `path`; an absent file is an empty state."""
        raw = read_state_file(path, "the watcher state", "start over")
        if raw is None:
            return cls(path=path)
        if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
            raise StateError(
                f"{path}: not a driftgate watcher state (version {STATE_VERSION}); delete it to start over"
            )
        seen = {
            str(pkg): {str(tag): str(ver) for tag, ver in tags.items()}
            for pkg, tags in dict(raw.get("seen", {})).items()
        }
        trivial = {
            str(tpl): [TrivialRelease.from_json(r) for r in releases]
            for tpl, releases in dict(raw.get("trivial", {})).items()
        }
        return cls(path=path, seen=seen, trivial=trivial)

    def last_seen(self, package: str, tag: str) -> str | None:
        """The version of `package` at `tag` that a successful run last handled."""
        return self.seen.get(package, {}).get(tag)

    def mark_seen(self, package: str, tag: str, version: str) -> None:
        """Remember that `version` (at `tag`) was handled completely."""
        self.seen.setdefault(package, {})[tag] = version

    def record_trivial(self, template: str, release: TrivialRelease) -> None:
        """Remember a trivial release of the package feeding `template` (once per version)."""
        releases = self.trivial.setdefault(template, [])
        if all(r.version != release.version or r.package != release.package for r in releases):
            releases.append(release)

    def pending_trivial(self, template: str, base: str) -> tuple[TrivialRelease, ...]:
        """Trivial releases recorded on top of template version `base`; older ones were merged away."""
        kept = [r for r in self.trivial.get(template, []) if r.base == base]
        if kept:
            self.trivial[template] = kept
        else:
            self.trivial.pop(template, None)
        return tuple(kept)

    def to_json(self) -> dict[str, Any]:
        """The state as written to disk."""
        return {
            "version": STATE_VERSION,
            "seen": self.seen,
            "trivial": {t: [asdict(r) for r in rs] for t, rs in sorted(self.trivial.items())},
        }

    def save(self) -> None:
        """Write atomically, so a run killed mid-write leaves the previous state intact."""
        write_state_file(
            self.path, json.dumps(self.to_json(), indent=2, sort_keys=True), "the watcher state"
        )


def read_state_file(path: Path, what: str, fix: str) -> Any:
    """A watcher's JSON state file, or None when absent; unreadable is a StateError saying `fix`."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise StateError(f"{path}: cannot read {what} ({exc}); delete it to {fix}") from exc


def write_state_file(path: Path, text: str, what: str) -> None:
    """Write a watcher's state atomically, so a run killed mid-write leaves the previous one."""
    try:
        write_atomically(path, text + "\n")
    except OSError as exc:
        raise StateError(f"{path}: cannot write {what}: {exc.strerror}") from exc


def state_path(home: Path) -> Path:
    """Where the npm watcher's state lives under DRIFTGATE_HOME."""
    return home / "state" / "npm.json"
