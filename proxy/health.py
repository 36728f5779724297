"""GET /health: version, templates, backends (redacted), cooldowns, recent upstream error rates."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from driftgate.proxy import __version__
from driftgate.proxy.config import Config, base_url_hint
from driftgate.proxy.cooldown import Cooldowns
from driftgate.proxy.observe.upstream_stats import UpstreamStats
from driftgate.proxy.templates.loader import TemplateSet

log = logging.getLogger("driftgate.app")
HOW_TO_ADD = (
    "no backends configured: run `driftgate backend add NAME --kind anthropic|openai --key-env VAR` "
    "and send `driftgate proxy` SIGHUP, or set ANTHROPIC_API_KEY / OPENAI_API_KEY and restart it"
)


def missing_keys(config: Config, env: Mapping[str, str]) -> frozenset[str]:
    """Backends whose key_env names an unset variable (logged: they would reach upstream keyless)."""
    keyless = [
        b
        for b in config.backends
        if b.key_env and not b.key and b.auth != "passthrough" and not env.get(b.key_env)
    ]
    for b in keyless:
        log.warning("backend %r: $%s is not set; its requests go upstream without a key",
                    b.name, b.key_env)  # fmt: skip
    return frozenset(b.name for b in keyless)


def warn_about_backends(config: Config) -> None:
    """Log, once per (re)load, each backend setting that loads but is likely a mistake."""
    for b in config.backends:
        hint = base_url_hint(b)
        if hint:
            log.warning("backend %r: %s", b.name, hint)


def health(
    config: Config,
    templates: TemplateSet,
    cooldowns: Cooldowns,
    keyless: frozenset[str] = frozenset(),
    connections: Mapping[str, int] | None = None,
    stats: UpstreamStats | None = None,
    probes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The health document; `probes` (from /health?probe=1) adds each backend's probe result.

    Status: "ok"; "degraded" when a backend's recent upstream error rate is high or a probe
    failed (the gateway answers, but requests through it fail); "no_backends".
    """
    backends = []
    degraded: list[str] = []
    probed = {p["name"]: p for p in probes or ()}
    for b in config.backends:
        cooling = cooldowns.cooling(b.name)
        entry = b.redacted()
        entry["state"] = "cooling" if cooling > 0 else "ok"
        if b.name in keyless:
            entry["state"] = "no_key"
            entry["message"] = f"${b.key_env} is not set in the gateway's environment"
        entry["cooldown_seconds"] = round(cooling, 1)
        if stats is not None:
            entry["recent"] = stats.recent(b.name)
            if stats.degraded(b.name):
                degraded.append(f"{b.name}: {entry['recent']['error_rate']:.0%} of recent upstream "
                                "requests failed")  # fmt: skip
        probe = probed.get(b.name)
        if probe is not None:
            entry["probe"] = {k: v for k, v in probe.items() if k != "name"}
            if probe["state"] not in ("ok", "skipped"):
                degraded.append(f"{b.name}: probe {probe['state']}")
        backends.append(entry)
    status = ("degraded" if degraded else "ok") if backends else "no_backends"
    doc: dict[str, Any] = {
        "status": status,
        "version": __version__,
        "templates": templates.summary(),
        "template_errors": list(templates.errors),
        "backends": backends,
    }
    if connections is not None:
        doc["connections"] = dict(connections)  # client side: open, cap, refused, timeouts
    if degraded:
        doc["problems"] = degraded
    if not backends:
        doc["message"] = HOW_TO_ADD
    return doc
