"""Which probes to send: one per model (is it served?), one per claimed capability, one per beta."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from driftgate.proxy.config import BackendConfig

# A 1x1 transparent PNG: the smallest image every vision model accepts.
PIXEL_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
PROMPT = "Reply with the single word: ok"
# USD per million tokens when a model's prices are not curated yet: on the high side, on purpose.
FALLBACK_PRICES = (15.0, 75.0)
# Rough input sizes (tokens) of each probe kind, for the estimate printed before sending.
INPUT_TOKENS = {"served": 20, "tools": 80, "vision": 120}
# Extended thinking needs budget_tokens >= 1024 and max_tokens above it: the dearest probe.
THINKING_BUDGET = 1024
TEMPLATE_FOR_KIND = {"anthropic": "anthropic", "openai": "openai"}


@dataclass(frozen=True)
class Probe:
    """One request the canary may send, and what it checks."""

    backend: str
    kind: str  # the backend kind: anthropic | openai
    model: str
    check: str  # served | <capability> | beta:<name>
    body: Mapping[str, Any] = field(hash=False, compare=False)
    headers: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    max_tokens: int = 1
    input_tokens: int = 20
    prices: tuple[float, float] = FALLBACK_PRICES

    @property
    def cost_usd(self) -> float:
        """The most this probe can cost: its input estimate plus every output token it allows."""
        price_in, price_out = self.prices
        return (self.input_tokens * price_in + self.max_tokens * price_out) / 1_000_000

    @property
    def label(self) -> str:
        """`anthropic claude-opus-4-6 thinking`."""
        return f"{self.backend} {self.model} {self.check}"


def _prices(entry: Mapping[str, Any]) -> tuple[float, float]:
    pricing = entry.get("pricing")
    if isinstance(pricing, Mapping):
        price_in, price_out = pricing.get("input"), pricing.get("output")
        if isinstance(price_in, int | float) and isinstance(price_out, int | float):
            return float(price_in), float(price_out)
    return FALLBACK_PRICES


def _user(content: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": content}]


def _anthropic(check: str, model: str) -> tuple[dict[str, Any], int, int]:
    """Body, max_tokens and input estimate of an Anthropic probe."""
    body: dict[str, Any] = {"model": model, "max_tokens": 1, "messages": _user(PROMPT)}
    if check == "thinking":
        body["max_tokens"] = THINKING_BUDGET + 1
        body["thinking"] = {"type": "enabled", "budget_tokens": THINKING_BUDGET}
    elif check == "adaptive_thinking":
        body["max_tokens"] = 16
        body["thinking"] = {"type": "adaptive"}
    elif check == "tools":
        body["tools"] = [
            {
                "name": "canary_probe",
                "description": "Never called.",
                "input_schema": {"type": "object", "properties": {}},
            }
        ]
        body["tool_choice"] = {"type": "none"}
    elif check == "vision":
        image = {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": PIXEL_PNG},
        }
        body["messages"] = _user([image, {"type": "text", "text": PROMPT}])
    return body, int(body["max_tokens"]), INPUT_TOKENS.get(check, 20)


def _openai(check: str, model: str) -> tuple[dict[str, Any], int, int]:
    """Body, max_completion_tokens and input estimate of a Chat Completions probe."""
    # Reasoning models spend a few tokens before answering; 16 keeps them from a length error.
    body: dict[str, Any] = {"model": model, "max_completion_tokens": 16, "messages": _user(PROMPT)}
    if check == "reasoning":
        body["reasoning_effort"] = "low"
    elif check == "tools":
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": "canary_probe",
                    "description": "Never called.",
                    "parameters": {"type": "object", "properties": {}},
                },
            }
        ]
        body["tool_choice"] = "none"
    elif check == "vision":
        url = f"data:image/png;base64,{PIXEL_PNG}"
        body["messages"] = _user(
            [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": PROMPT}]
        )
    return body, 16, INPUT_TOKENS.get(check, 20)


# The capabilities each kind knows how to probe; others a template claims are listed, not sent.
PROBED_CAPABILITIES = {
    "anthropic": ("thinking", "adaptive_thinking", "tools", "vision"),
    "openai": ("reasoning", "tools", "vision"),
}


def models_for(backend: BackendConfig, template: Mapping[str, Any]) -> list[str]:
    """The template's models this backend serves: those matching its `models`, else all of them."""
    models = template.get("models")
    names = sorted(models) if isinstance(models, Mapping) else []
    if not backend.models:
        return names
    return [m for m in names if any(fnmatchcase(m, pattern) for pattern in backend.models)]


def plan_probes(backend: BackendConfig, template: Mapping[str, Any]) -> list[Probe]:
    """Every probe for one backend, in priority order: served, then capabilities, then betas."""
    build = _anthropic if backend.kind == "anthropic" else _openai
    models: Mapping[str, Any] = template.get("models") or {}
    chosen = models_for(backend, template)
    served: list[Probe] = []
    capabilities: list[Probe] = []
    for model in chosen:
        entry = models[model] if isinstance(models[model], Mapping) else {}
        prices = _prices(entry)
        body, max_tokens, tokens_in = build("served", model)
        served.append(
            Probe(
                backend.name, backend.kind, model, "served", body, {}, max_tokens, tokens_in, prices
            )
        )
        claimed = entry.get("capabilities") or {}
        for check in PROBED_CAPABILITIES.get(backend.kind, ()):
            if claimed.get(check) is True:
                body, max_tokens, tokens_in = build(check, model)
                capabilities.append(
                    Probe(
                        backend.name,
                        backend.kind,
                        model,
                        check,
                        body,
                        {},
                        max_tokens,
                        tokens_in,
                        prices,
                    )
                )
    betas: list[Probe] = []
    api = template.get("api") or {}
    if backend.kind == "anthropic" and chosen:
        # A beta is a header on any request: probe it once, on the cheapest model.
        cheapest = min(
            chosen, key=lambda m: _prices(models[m] if isinstance(models[m], Mapping) else {})
        )
        prices = _prices(models[cheapest] if isinstance(models[cheapest], Mapping) else {})
        for beta in api.get("betas") or []:
            body, max_tokens, tokens_in = build("served", cheapest)
            betas.append(
                Probe(
                    backend.name,
                    backend.kind,
                    cheapest,
                    f"beta:{beta}",
                    body,
                    {"anthropic-beta": str(beta)},
                    max_tokens,
                    tokens_in,
                    prices,
                )
            )
    return served + capabilities + betas


def unprobed(backend: BackendConfig, template: Mapping[str, Any]) -> dict[str, list[str]]:
    """Capabilities the template claims (true) that the canary has no probe for, with their models."""
    models: Mapping[str, Any] = template.get("models") or {}
    known = PROBED_CAPABILITIES.get(backend.kind, ())
    out: dict[str, list[str]] = {}
    for model in models_for(backend, template):
        entry = models[model] if isinstance(models[model], Mapping) else {}
        for name, claimed in sorted((entry.get("capabilities") or {}).items()):
            if claimed is True and name not in known:
                out.setdefault(name, []).append(model)
    return out


def estimated_cost(probes: list[Probe]) -> float:
    """The most the probes can cost together, in USD."""
    return sum(p.cost_usd for p in probes)
