"""Bounded label values for /metrics: only names the config and templates know, else "other"."""

from __future__ import annotations

from collections.abc import Callable

from driftgate.proxy.config import Config
from driftgate.proxy.templates.loader import TemplateSet

OTHER = "other"
_GLOB_CHARS = frozenset("*?[")


def routed_models(config: Config, templates: TemplateSet) -> frozenset[str]:
    """Model names a label may carry: template models and aliases, literal config models, fallbacks."""
    names: set[str] = set()
    for t in templates.templates.values():
        if t.kind != "upstream":
            continue
        names.update(t.doc.get("models", {}))
        for alias, target in t.doc.get("aliases", {}).items():
            names.update((alias, target))
    for b in config.backends:
        names.update(m for m in b.models if not _GLOB_CHARS & set(m))
    for key, targets in config.fallbacks.items():
        names.add(key)
        names.update(t.split(":", 1)[-1] for t in targets)
    return frozenset(names)


class ModelLabels:
    """Maps a model to itself when routed, else "other"; recomputed when the templates change."""

    def __init__(self, config: Config, templates: Callable[[], TemplateSet]) -> None:
        self._config = config
        self._templates = templates
        self._seen: TemplateSet | None = None
        self._names: frozenset[str] = frozenset()
        self.backends = frozenset(b.name for b in config.backends)

    def model(self, name: str) -> str:
        """`name` if the config or templates route it, else "other"."""
        current = self._templates()
        if current is not self._seen:
            self._names = routed_models(self._config, current)
            self._seen = current
        return name if name in self._names else OTHER

    def backend(self, name: str) -> str:
        """`name` if it is a configured backend, else "other"."""
        return name if name in self.backends else OTHER


def status_label(status: int) -> str:
    """An HTTP status as a label ("200"); "other" outside 100-599."""
    return str(status) if 100 <= status <= 599 else OTHER
