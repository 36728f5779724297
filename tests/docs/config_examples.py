"""Load a TOML example from the docs the way `driftgate proxy` (and `driftgate watch npm`) would."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import tomli_w

from driftgate.proxy.config import BackendConfig, Config, load_config
from driftgate.proxy.errors import ConfigError
from driftgate.proxy.server import GatewayServer
from driftgate.watchers.extractors import default_watched, extractors
from driftgate.watchers.npm.registry_url import resolve_registry_url
from driftgate.watchers.npm.settings import WatchConfig, WatchFlags, resolve

# A fragment may name backends it does not define; they are stood in for by this one.
_STAND_IN = {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"}


def scratch_env(home: Path) -> dict[str, str]:
    """A shell with nothing driftgate reads set, except its home."""
    return {"DRIFTGATE_HOME": str(home)}


def start_like_proxy(text: str, home: Path) -> Config:
    """Write `text` as $DRIFTGATE_HOME/config.toml, load it and start the gateway (port 0), then stop.

    Raises ConfigError (or TOMLDecodeError) with the loader's own sentence when the example would not start.
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)
    env = scratch_env(home)
    config = load_config(env=env)
    # `driftgate proxy --port 0`: the example's own port may be taken on this machine.
    config = config.with_overrides(port=0)
    server = GatewayServer(config, env=env)
    server.start()
    server.stop()
    if "watch" in tomllib.loads(text):
        resolve_watch(config, env)
    return config


def resolve_watch(config: Config, env: Mapping[str, str]) -> WatchConfig:
    """What `driftgate watch npm` makes of the [watch] table before its first request."""
    wc = resolve(
        config.watch,
        WatchFlags(),
        home=config.home,
        extractors=extractors(),
        defaults=default_watched(),
    )
    resolve_registry_url(wc.registry, env, npmrc=config.home / "no-npmrc")
    return wc


def complete_fragment(table: Mapping[str, Any]) -> dict[str, Any]:
    """The fragment plus stand-in backends for the names its fallbacks and default_backend use."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in table.items()}
    backends = dict(out.get("backends", {}))
    named: set[str] = set()
    for targets in (out.get("fallbacks") or {}).values():
        for target in targets if isinstance(targets, list) else []:
            prefix, sep, _ = str(target).partition(":")
            if sep:
                named.add(prefix)
    default = (out.get("gateway") or {}).get("default_backend")
    if isinstance(default, str):
        named.add(default)
    for name in sorted(named - set(backends)):
        backends[name] = dict(_STAND_IN)
    if backends:
        out["backends"] = backends
    return out


def loader_is_strict(home: Path) -> bool:
    """Whether the real loader already refuses an unknown key (then it is the judge of keys)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("[gateway]\nzz_not_a_key = 1\n")
    try:
        load_config(env=scratch_env(home))
    except ConfigError:
        return True
    return False


def _names(cls: type, *leave_out: str) -> set[str]:
    return {f.name for f in fields(cls)} - set(leave_out)


def unknown_keys(table: Mapping[str, Any]) -> list[str]:
    """Keys the loader does not read, for as long as it does not refuse them itself.

    Tables follow the Config object ([gateway] its fields, [backends.NAME] BackendConfig's, and a
    top-level table per Mapping field such as [watch] or [daemon]); [watch] keys from the npm
    watcher's settings and the tables the other watchers read.
    """
    tables = {"gateway", "backends"} | {f.name for f in fields(Config) if f.default_factory is dict}
    gateway = _names(Config, "home", "path", "api_key", "proxies", *tables)
    backend = _names(BackendConfig, "name")
    out = [f"[{k}]" for k in table if k not in tables]
    out += [f"[gateway] {k}" for k in table.get("gateway", {}) if k not in gateway]
    for name, b in (table.get("backends") or {}).items():
        out += [f"[backends.{name}] {k}" for k in b if k not in backend]
    # [watch]: the npm watcher's settings, the tables the other watchers read, the ping URL.
    watch = _names(WatchConfig) | {"ping_url", "canary", "liveness"}
    package = {"name", "template", "tags", "tag", "extractor"}
    w = table.get("watch") or {}
    out += [f"[watch] {k}" for k in w if k not in watch]
    for p in w.get("packages", []) if isinstance(w.get("packages"), list) else []:
        out += [f"[watch] packages: {k}" for k in p if k not in package]
    return out


def check_config_example(text: str, marker: str | None, home: Path) -> None:
    """Raise ConfigError (or a TOML error) naming what is wrong with one ```toml block."""
    table = tomllib.loads(text)
    if marker == "not-config":
        return
    if not loader_is_strict(home / "probe"):
        unknown = unknown_keys(table)
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
    if marker == "fragment":
        text = tomli_w.dumps(complete_fragment(table))
    start_like_proxy(text, home / "home")
