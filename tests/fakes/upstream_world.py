"""What a fake upstream serves and accepts, scriptable: a model retired, a capability refused,
rate-limit headers missing or malformed. Both fakes consult one `World` (the canary's test bed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

RateHeaders = Literal["ok", "missing", "malformed"]


@dataclass(frozen=True)
class Refusal:
    """An answer the real API gives when the world changed: HTTP status, error type, message."""

    status: int
    error_type: str
    message: str


def anthropic_features(body: Mapping[str, Any], headers: Mapping[str, str]) -> set[str]:
    """The capabilities an Anthropic request exercises (`thinking`, `beta:NAME`, ...)."""
    found: set[str] = set()
    thinking = body.get("thinking")
    if isinstance(thinking, dict):
        found.add("adaptive_thinking" if thinking.get("type") == "adaptive" else "thinking")
    if body.get("tools"):
        found.add("tools")
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
            isinstance(b, dict) and b.get("type") == "image" for b in content
        ):
            found.add("vision")
    for beta in headers.get("anthropic-beta", "").split(","):
        if beta.strip():
            found.add("beta:" + beta.strip())
    return found


def openai_features(body: Mapping[str, Any]) -> set[str]:
    """The capabilities a Chat Completions request exercises (`reasoning`, `tools`, `vision`)."""
    found: set[str] = set()
    if body.get("reasoning_effort") is not None:
        found.add("reasoning")
    if body.get("tools"):
        found.add("tools")
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
            isinstance(p, dict) and p.get("type") == "image_url" for p in content
        ):
            found.add("vision")
    return found


@dataclass
class World:
    """Scripted changes; empty means the upstream serves and accepts everything asked of it."""

    retired: set[str] = field(default_factory=set)
    # (feature, model or None for every model) -> the refusal's message
    refused: dict[tuple[str, str | None], str] = field(default_factory=dict)
    rate_headers: RateHeaders = "ok"
    extra_headers: dict[str, str] = field(default_factory=dict)  # sent on every answer

    def retire(self, model: str) -> None:
        """The model is no longer served: 404 not_found_error / model_not_found."""
        self.retired.add(model)

    def refuse(self, feature: str, model: str | None = None, message: str | None = None) -> None:
        """A capability (`thinking`, `tools`, `vision`, `reasoning`, `beta:NAME`) now gets a 400."""
        self.refused[(feature, model)] = message or f"{feature} is not supported on this model"

    def refusal(self, model: str, features: set[str], dialect: str) -> Refusal | None:
        """How the upstream answers a request for `model` exercising `features`; None: normally."""
        if model in self.retired:
            if dialect == "anthropic":
                return Refusal(404, "not_found_error", f"model: {model}")
            return Refusal(
                404,
                "model_not_found",
                f"The model `{model}` does not exist or you do not have access to it.",
            )
        for feature in sorted(features):
            message = self.refused.get((feature, model)) or self.refused.get((feature, None))
            if message is not None:
                return Refusal(400, "invalid_request_error", message)
        return None

    def rate_limit_headers(self, dialect: str) -> dict[str, str]:
        """The rate-limit headers the real API sends on every answer (or broken ones, as scripted)."""
        if self.rate_headers == "missing":
            return {}
        reset = (datetime.now(UTC) + timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
        if dialect == "anthropic":
            out = {
                "anthropic-ratelimit-requests-limit": "50",
                "anthropic-ratelimit-requests-remaining": "49",
                "anthropic-ratelimit-requests-reset": reset,
                "anthropic-ratelimit-tokens-limit": "40000",
                "anthropic-ratelimit-tokens-remaining": "39990",
                "anthropic-ratelimit-tokens-reset": reset,
            }
        else:
            out = {
                "x-ratelimit-limit-requests": "500",
                "x-ratelimit-remaining-requests": "499",
                "x-ratelimit-reset-requests": "120ms",
                "x-ratelimit-limit-tokens": "30000",
                "x-ratelimit-remaining-tokens": "29990",
                "x-ratelimit-reset-tokens": "6m0s",
            }
        if self.rate_headers == "malformed":
            out = {k: "soon" if "reset" in k else "many" for k in out}
        return {**out, **self.extra_headers}
