"""`driftgate watch npm` settings: the [watch] table, then the environment, then flags."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast, get_args

from driftgate.proxy.errors import ConfigError
from driftgate.watchers.extractors import Extractor
from driftgate.watchers.github import DEFAULT_API_URL
from driftgate.watchers.npm.watch import AutoMerge, OnTrivial, WatchedPackage
from driftgate.watchers.publish import is_repo_name

DEFAULT_INTERVAL_MINUTES = 60.0
ON_TRIVIAL: tuple[str, ...] = get_args(OnTrivial)
AUTO_MERGE: tuple[str, ...] = get_args(AutoMerge)


@dataclass(frozen=True)
class WatchFlags:
    """The command-line values (None: not given, fall back to config)."""

    packages: Sequence[str] = ()
    tag: str | None = None
    registry: str | None = None
    repo: str | None = None
    git_remote: str | None = None
    github_api_url: str | None = None
    workdir: str | None = None
    templates: str | None = None
    on_trivial: str | None = None
    auto_merge: str | None = None
    interval: float | None = None
    compat: bool = False


@dataclass(frozen=True)
class WatchConfig:
    """Everything a watch run needs, resolved once."""

    packages: tuple[WatchedPackage, ...]
    registry: str | None  # None: npm_config_registry, ~/.npmrc, then the public registry
    repo: str | None
    git_remote: str | None
    github_api_url: str
    workdir: Path
    templates: Path | None
    on_trivial: OnTrivial
    auto_merge: AutoMerge
    interval_minutes: float
    compat: bool = False  # run each new client release through the gateway (compat run)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"watch {name} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _configured_packages(table: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    raw = table.get("packages")
    if raw is None:
        return {}
    if not isinstance(raw, list) or not all(
        isinstance(p, dict) and isinstance(p.get("name"), str) for p in raw
    ):
        raise ConfigError(
            '[watch] packages must be a list of tables with a name, e.g. {name = "openai"}'
        )
    return {str(p["name"]): p for p in raw}


def _tags(entry: Mapping[str, Any], flag: str | None) -> tuple[str, ...]:
    if flag:
        return (flag,)
    tags = entry.get("tags", entry.get("tag", ["latest"]))
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not tags or not all(isinstance(t, str) and t for t in tags):
        raise ConfigError(
            f"[watch] package {entry.get('name')!r}: tags must be a non-empty list of dist-tags"
        )
    return tuple(tags)


def watched_packages(
    table: Mapping[str, Any],
    flags: WatchFlags,
    extractors: Mapping[str, Extractor],
    defaults: Sequence[str],
) -> tuple[WatchedPackage, ...]:
    """`--package` names, else the configured list, else the defaults; templates from config or the extractor."""
    configured = _configured_packages(table)
    names = list(flags.packages) or list(configured) or list(defaults)
    out: list[WatchedPackage] = []
    by_name = {e.name: e for e in extractors.values()}
    for name in dict.fromkeys(names):
        entry = configured.get(name, {"name": name})
        named = entry.get("extractor")
        if named is not None and named not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise ConfigError(
                f"[watch] package {name!r}: no extractor is called {named!r} (known: {known})"
            )
        extractor = by_name[named] if named else extractors.get(name)
        template = entry.get("template") or (extractor.template if extractor else None)
        if not template:
            known = ", ".join(sorted(extractors)) or "none"
            raise ConfigError(
                f"no extractor is registered for {name!r} and no template is configured (known: {known})"
            )
        out.append(
            WatchedPackage(
                package=name,
                template=str(template).removesuffix(".json"),
                tags=_tags(entry, flags.tag),
                extractor=str(named) if named else None,
            )
        )
    return tuple(out)


def resolve(
    table: Mapping[str, Any],
    flags: WatchFlags,
    *,
    home: Path,
    extractors: Mapping[str, Extractor],
    defaults: Sequence[str],
) -> WatchConfig:
    """Merge the [watch] table with the flags (flags win); ConfigError names what is wrong."""
    interval = (
        flags.interval
        if flags.interval is not None
        else table.get("interval_minutes", DEFAULT_INTERVAL_MINUTES)
    )
    if not isinstance(interval, int | float) or interval <= 0:
        raise ConfigError(f"watch interval must be a positive number of minutes, got {interval!r}")
    workdir = flags.workdir or table.get("workdir")
    templates = flags.templates or table.get("templates")
    repo = flags.repo or table.get("repo")
    if repo is not None and not is_repo_name(repo):
        raise ConfigError(f"--repo must look like OWNER/NAME, got {repo!r}")
    return WatchConfig(
        packages=watched_packages(table, flags, extractors, defaults),
        registry=flags.registry or table.get("registry"),
        repo=repo,
        git_remote=flags.git_remote or table.get("git_remote"),
        github_api_url=str(
            flags.github_api_url or table.get("github_api_url") or DEFAULT_API_URL
        ).rstrip("/"),
        workdir=Path(workdir).expanduser() if workdir else home / "work",
        templates=Path(templates).expanduser() if templates else None,
        on_trivial=cast(
            OnTrivial,
            _choice(
                "on_trivial", flags.on_trivial or table.get("on_trivial", "record"), ON_TRIVIAL
            ),
        ),
        auto_merge=cast(
            AutoMerge,
            _choice("auto_merge", flags.auto_merge or table.get("auto_merge", "off"), AUTO_MERGE),
        ),
        interval_minutes=float(interval),
        compat=flags.compat,
    )
