"""GET /health: version, templates in force, backends (redacted) and their cooldowns."""

from __future__ import annotations

from typing import Any

from proxy import __version__
from proxy.config import Config
from proxy.cooldown import Cooldowns
from proxy.templates.loader import TemplateSet

HOW_TO_ADD = (
    "no backends configured: run `driftgate backend add NAME --kind anthropic|openai --key-env VAR` "
    "or set ANTHROPIC_API_KEY / OPENAI_API_KEY, then restart `driftgate proxy`"
)


def health(config: Config, templates: TemplateSet, cooldowns: Cooldowns) -> dict[str, Any]:
    """The health document."""
    backends = []
    for b in config.backends:
        cooling = cooldowns.cooling(b.name)
        entry = b.redacted()
        entry["state"] = "cooling" if cooling > 0 else "ok"
        entry["cooldown_seconds"] = round(cooling, 1)
        backends.append(entry)
    doc: dict[str, Any] = {
        "status": "ok" if backends else "no_backends",
        "version": __version__,
        "templates": templates.summary(),
        "template_errors": list(templates.errors),
        "backends": backends,
    }
    if not backends:
        doc["message"] = HOW_TO_ADD
    return doc
