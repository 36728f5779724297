"""Load a TOML example from the docs the way `driftgate proxy` (and `driftgate watch npm`) would."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

from driftgate.proxy.config import Config, load_config
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


def check_config_example(text: str, marker: str | None, home: Path) -> None:
    """Raise ConfigError (or a TOML error) naming what is wrong with one ```toml block.

    The loader is strict (an unknown table or key is refused with "did you mean"), so loading is
    also the check that every key of the example exists.
    """
    table = tomllib.loads(text)
    if marker == "not-config":
        return
    if marker == "fragment":
        text = tomli_w.dumps(complete_fragment(table))
    start_like_proxy(text, home / "home")
