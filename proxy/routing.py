"""Which backend serves a model: forced prefixes, template aliases, claimed globs, fallbacks."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from driftgate.proxy.config import BackendConfig, Config
from driftgate.proxy.errors import ConfigError, Unroutable
from driftgate.proxy.templates.loader import TemplateSet

_CACHE_LIMIT = 4096  # model names come from clients: bound the memo so junk names cannot grow it
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Route:
    """One candidate upstream for a request."""

    backend: BackendConfig
    model: str  # the id sent upstream: alias resolved, "backend:" prefix stripped
    requested: str  # what the client asked for


def _claims(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


@dataclass(frozen=True)
class _Backend:
    config: BackendConfig
    claims: re.Pattern[str] | None

    def claim(self, model: str) -> bool:
        return self.claims is not None and self.claims.match(model) is not None


class Router:
    """Resolve a requested model to an ordered list of routes (primary, then fallbacks)."""

    def __init__(self, config: Config, templates: Callable[[], TemplateSet]) -> None:
        self._templates = templates
        self._backends = [_Backend(b, _claims(b.models)) for b in config.backends]
        self._by_name = {b.config.name: b for b in self._backends}
        self._anthropic = [b for b in self._backends if b.config.kind == "anthropic"]
        openai = [b for b in self._backends if b.config.kind == "openai"]
        self._default = self._by_name[config.default_backend] if config.default_backend else None
        # One openai-kind backend claiming nothing is the catch-all (e.g. OPENAI_API_KEY alone).
        self._sole_openai = openai[0] if len(openai) == 1 and openai[0].claims is None else None
        self._fallbacks: Mapping[str, tuple[str, ...]] = config.fallbacks
        for key, targets in config.fallbacks.items():
            for target in targets:
                prefix, sep, _ = target.partition(":")
                if sep and prefix not in self._by_name and not self._claimed_elsewhere(target):
                    raise ConfigError(
                        f"fallbacks[{key!r}]: {target!r} names backend {prefix!r}, which is not configured"
                    )
        self._seen: TemplateSet | None = None
        self._aliases: dict[str, dict[str, str]] = {}
        self._cache: dict[str, tuple[Route, ...]] = {}
        self._routable: list[tuple[str, str]] | None = None

    def resolve(self, model: str, templates: TemplateSet | None = None) -> tuple[Route, ...]:
        """Primary route first, then the configured fallbacks; Unroutable when nothing serves it.

        `templates`: the set in force, when the caller has it already (else it is asked for).
        """
        self._refresh(templates)
        cached = self._cache.get(model)
        if cached is None:
            cached = tuple(self._resolve_uncached(model))
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[model] = cached
        return cached

    def routable(self) -> list[tuple[str, str]]:
        """(model id, backend name) pairs for /v1/models: template models, explicit ids, aliases."""
        self._refresh()
        if self._routable is not None:
            return list(self._routable)
        names: list[str] = []
        for t in self._seen.templates.values() if self._seen else ():
            if t.kind == "upstream":
                names.extend(t.doc.get("models", {}))
        for b in self._backends:
            names.extend(m for m in b.config.models if not _GLOB_CHARS & set(m))
        names.extend(self._aliases.get("", {}))
        out: dict[str, str] = {}
        for name in names:
            if name in out:
                continue
            route = self._primary(name, name)
            if route is not None:
                out[name] = route.backend.name
        self._routable = list(out.items())
        return list(self._routable)

    def _refresh(self, current: TemplateSet | None = None) -> None:
        if current is None:
            current = self._templates()
        if current is self._seen:
            return
        self._seen = current
        self._cache = {}
        self._routable = None
        self._aliases = _aliases_by_dialect(current)

    def _resolve_uncached(self, requested: str) -> list[Route]:
        if not self._backends:
            raise Unroutable(
                f"model {requested!r} is not routable: no backends are configured. Add one with "
                "`driftgate backend add NAME --kind anthropic|openai ...` and send the gateway "
                "SIGHUP (or restart it), or set ANTHROPIC_API_KEY or OPENAI_API_KEY and restart it"
            )
        primary = self._primary(requested, requested)
        if primary is None:
            raise Unroutable(self._unroutable_message(requested))
        routes = [primary]
        bare = (
            requested.partition(":")[2]
            if requested.partition(":")[0] in self._by_name
            else requested
        )
        keys = (requested, bare, primary.model)
        targets = next((self._fallbacks[k] for k in keys if k in self._fallbacks), ())
        for target in targets:
            route = self._primary(target, requested)
            if route is not None and all(
                (r.backend.name, r.model) != (route.backend.name, route.model) for r in routes
            ):
                routes.append(route)
        return routes

    def _primary(self, model: str, requested: str) -> Route | None:
        prefix, sep, rest = model.partition(":")
        if sep:
            forced = self._by_name.get(prefix)
            if forced is not None:
                if not rest:
                    return None
                return Route(forced.config, self._alias(rest, forced.config.kind), requested)
            # Ollama-style tags ("qwen2.5-coder:7b") are ids, not prefixes, when a backend claims them.
            claimant = self._claimed_elsewhere(model)
            return Route(claimant.config, model, requested) if claimant else None
        resolved = self._alias(model, None)
        backend = self._choose(resolved)
        return Route(backend.config, resolved, requested) if backend else None

    def _claimed_elsewhere(self, model: str) -> _Backend | None:
        return next((b for b in self._backends if b.claim(model)), None)

    def _alias(self, model: str, kind: str | None) -> str:
        if kind is not None:
            own = self._aliases.get(kind, {}).get(model)
            if own is not None:
                return own
        return self._aliases.get("", {}).get(model, model)

    def _choose(self, model: str) -> _Backend | None:
        if model.startswith("claude-"):
            claimed = next((b for b in self._anthropic if b.claim(model)), None)
            if claimed is not None:
                return claimed
            if self._anthropic:
                return self._anthropic[0]
            return self._claimed_elsewhere(model) or self._default
        return self._claimed_elsewhere(model) or self._default or self._sole_openai

    def _unroutable_message(self, requested: str) -> str:
        prefix, sep, _ = requested.partition(":")
        if sep and prefix not in self._by_name:
            head = f"model {requested!r} is not routable: there is no backend named {prefix!r}."
        else:
            head = f"model {requested!r} is not routable."
        parts = [self._describe(b) for b in self._backends]
        return f"{head} Routable: {'; '.join(parts)}; or force one with BACKEND:MODEL"

    def _describe(self, b: _Backend) -> str:
        serves: list[str] = list(b.config.models)
        if self._anthropic and b is self._anthropic[0]:
            serves.insert(0, "claude-*")
        if b is self._default:
            serves.append("any other model (default)")
        elif b is self._sole_openai:
            serves.append("any other model")
        aliases = [a for a, m in self._aliases.get("", {}).items() if self._choose(m) is b]
        if aliases:
            serves.append("aliases " + ", ".join(aliases))
        what = ", ".join(serves) if serves else f"only as {b.config.name}:MODEL"
        return f"{b.config.name!r} ({b.config.kind}: {what})"


def _aliases_by_dialect(templates: TemplateSet) -> dict[str, dict[str, str]]:
    """Aliases per upstream dialect, plus "" for all of them merged (first dialect wins a clash)."""
    by_dialect: dict[str, dict[str, str]] = {}
    merged: dict[str, str] = {}
    ordered = sorted(templates.templates.values(), key=lambda t: (t.name != "anthropic", t.name))
    for t in ordered:
        if t.kind != "upstream":
            continue
        aliases = {str(k): str(v) for k, v in t.doc.get("aliases", {}).items()}
        by_dialect.setdefault(str(t.doc.get("dialect")), {}).update(aliases)
        for k, v in aliases.items():
            merged.setdefault(k, v)
    by_dialect[""] = merged
    return by_dialect
