"""Fit a request to what its model's template says the model accepts, before forwarding."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from driftgate.proxy.errors import Dialect, InvalidRequest
from driftgate.proxy.routing import Route
from driftgate.proxy.templates.loader import TemplateSet

CLAMPED = "x-driftgate-max-tokens-clamped"
ADJUSTED = "x-driftgate-adjusted"  # every value moved into the backend's range, e.g. "max_tokens 64000->32000"
CONVERTED = "x-driftgate-converted"
_MAX_THINKING_BUDGET = 16000
_MIN_THINKING_BUDGET = 1024  # the Messages API rejects a smaller budget_tokens
REASONING_FROM_ANTHROPIC = "thinking"  # how an Anthropic client named what became reasoning_effort
_CONVERT_HINT = "or set convert_unsupported = true under [gateway] to have driftgate convert it"


@dataclass(slots=True)
class Normalised:
    """The body to forward (the caller's own dict when nothing changed) and headers for the client."""

    body: dict[str, Any]
    response_headers: dict[str, str] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()  # features a translation produced that the model lacks


class _Edit:
    """Copy-on-write over the request body, collecting the headers that report each change."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.copied = False
        self.converted: list[str] = []
        self.adjusted: list[str] = []
        self.dropped: list[str] = []
        self.headers: dict[str, str] = {}

    def set(self, key: str, value: Any) -> None:
        self._copy()
        self.body[key] = value

    def drop(self, key: str) -> None:
        self._copy()
        del self.body[key]

    def _copy(self) -> None:
        if not self.copied:
            self.body = dict(self.body)
            self.copied = True

    def result(self) -> Normalised:
        if self.converted:
            self.headers[CONVERTED] = ", ".join(self.converted)
        if self.adjusted:
            self.headers[ADJUSTED] = ", ".join(self.adjusted)
        return Normalised(self.body, self.headers, tuple(self.dropped))


def normalise(
    body: dict[str, Any],
    dialect: Dialect,
    route: Route,
    templates: TemplateSet,
    *,
    convert_unsupported: bool,
    translated: bool = False,
) -> Normalised:
    """Clamp max tokens and reject or convert what the model's template marks unsupported.

    A `translated` body's reasoning request was written by the gateway, not by the client in this
    dialect: where the model lacks it, it is dropped (and reported) rather than rejected, since the
    client cannot fix a field it never sent (Claude Code sends `thinking` by default).
    """
    if dialect == "responses":
        return Normalised(body, {})  # forwarded as the client sent it: the real API judges it
    template = templates.get(dialect)
    facts = template.doc["models"].get(route.model) if template is not None else None
    if not facts:
        return Normalised(body, {})
    caps = facts.get("capabilities") or {}
    limit = facts.get("max_output_tokens")
    keys = _LIMITED[dialect]
    if not _acts_on(body, dialect, caps) and not _over(body, keys, limit):
        # Every check below changes or refuses something only for a field the model lacks the
        # capability for or a token count over its limit: with neither, the body goes as it is.
        return Normalised(body, {})
    edit = _Edit(body)
    if translated:
        _drop_translated_reasoning(edit, dialect, caps)
    if dialect == "anthropic":
        _anthropic_capabilities(edit, route.model, caps, convert_unsupported)
        _clamp(edit, keys, limit)
        _fit_thinking_budget(edit)
    else:
        _openai_capabilities(edit, route.model, caps, convert_unsupported)
        _clamp(edit, keys, limit)
    return edit.result()


# The body field each capability's checks below read, by dialect: a capability the model lacks
# matters only when the body carries that field (gpt-4o-mini lacks reasoning, yet a request
# without reasoning_effort has nothing to change).
_FIELD_OF: dict[str, dict[str, str]] = {
    "anthropic": {
        "thinking": "thinking",
        "adaptive_thinking": "thinking",
        "tools": "tools",
        "vision": "messages",
    },
    "openai": {"reasoning": "reasoning_effort", "tools": "tools", "vision": "messages"},
}


def _acts_on(body: dict[str, Any], dialect: str, caps: Any) -> bool:
    """Whether `body` carries a field that a capability the model lacks would change or refuse."""
    if False not in caps.values():
        return False
    fields = _FIELD_OF[dialect]
    for name, value in caps.items():
        if value is False:
            field_name = fields.get(name)
            if field_name is not None and field_name in body:
                return True
    return False


# The token counts each dialect's body may carry, clamped to the model's max_output_tokens.
_LIMITED: dict[str, tuple[str, ...]] = {
    "anthropic": ("max_tokens",),
    "openai": ("max_tokens", "max_completion_tokens"),
}


def _over(body: dict[str, Any], keys: tuple[str, ...], limit: Any) -> bool:
    """Whether any of `keys` asks for more tokens than `limit` (what _clamp would change)."""
    if not isinstance(limit, int):
        return False
    for key in keys:
        asked = body.get(key)
        if isinstance(asked, int) and not isinstance(asked, bool) and asked > limit:
            return True
    return False


def capability(templates: TemplateSet, dialect: Dialect, model: str, name: str) -> bool | None:
    """What `model`'s template says of capability `name`: True, False, or None when unknown."""
    template = templates.get(dialect)
    facts = template.doc["models"].get(model) if template is not None else None
    caps = facts.get("capabilities") if facts else None
    value = caps.get(name) if caps else None
    return value if isinstance(value, bool) else None


def _unsupported(model: str, what: str, capability: str, fix: str) -> InvalidRequest:
    return InvalidRequest(
        f"model {model!r} does not support {what} (its template marks {capability!r} unsupported); {fix}"
    )


def _anthropic_capabilities(edit: _Edit, model: str, caps: Any, convert: bool) -> None:
    thinking = edit.body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") != "disabled":
        if caps.get("thinking") is False:
            if not convert:
                raise _unsupported(
                    model, "extended thinking", "thinking", f"remove 'thinking', {_CONVERT_HINT}"
                )
            edit.drop("thinking")
            edit.converted.append("thinking->dropped")
        elif thinking.get("type") == "adaptive" and caps.get("adaptive_thinking") is False:
            if not convert:
                raise _unsupported(
                    model,
                    "adaptive thinking",
                    "adaptive_thinking",
                    f"send thinking {{'type': 'enabled', 'budget_tokens': N}} instead, {_CONVERT_HINT}",
                )
            _adaptive_to_enabled(edit, thinking)
    if caps.get("tools") is False and edit.body.get("tools"):
        raise _unsupported(model, "tools", "tools", "remove 'tools' or pick a model that has them")
    if caps.get("vision") is False and _has_block(edit.body.get("messages"), "image"):
        raise _unsupported(
            model, "images", "vision", "remove the image blocks or pick a vision model"
        )


def _drop_translated_reasoning(edit: _Edit, dialect: Dialect, caps: Any) -> None:
    """Drop a reasoning request the translation produced for a model without reasoning."""
    if dialect == "openai":
        if caps.get("reasoning") is False and "reasoning_effort" in edit.body:
            edit.body = without_reasoning(edit.body)
            edit.copied = True
            edit.dropped.append(REASONING_FROM_ANTHROPIC)
    elif caps.get("thinking") is False and "thinking" in edit.body:
        edit.drop("thinking")
        edit.dropped.append("reasoning_effort")  # named as the (OpenAI) client sent it


def without_reasoning(body: dict[str, Any]) -> dict[str, Any]:
    """A translated OpenAI body without `reasoning_effort`, as if no reasoning had been asked for."""
    out = {k: v for k, v in body.items() if k != "reasoning_effort"}
    if "max_completion_tokens" in out and "max_tokens" not in out:
        # the newer name was chosen only because reasoning was asked for
        out["max_tokens"] = out.pop("max_completion_tokens")
    return out


def _adaptive_to_enabled(edit: _Edit, thinking: dict[str, Any]) -> None:
    max_tokens = edit.body.get("max_tokens")
    budget = min(max_tokens - 1, _MAX_THINKING_BUDGET) if isinstance(max_tokens, int) else 0
    if budget < _MIN_THINKING_BUDGET:
        # No legal budget fits under this max_tokens; answering without thinking beats a 400 upstream.
        edit.drop("thinking")
        edit.converted.append("thinking.adaptive->dropped")
        return
    converted = {k: v for k, v in thinking.items() if k != "type"}
    converted.update(type="enabled", budget_tokens=budget)
    edit.set("thinking", converted)
    edit.converted.append("thinking.adaptive->enabled")


def _openai_capabilities(edit: _Edit, model: str, caps: Any, convert: bool) -> None:
    if caps.get("reasoning") is False and edit.body.get("reasoning_effort") is not None:
        if not convert:
            raise _unsupported(
                model,
                "reasoning_effort",
                "reasoning",
                f"remove 'reasoning_effort', {_CONVERT_HINT}",
            )
        edit.drop("reasoning_effort")
        edit.converted.append("reasoning_effort->dropped")
    if caps.get("tools") is False and edit.body.get("tools"):
        raise _unsupported(model, "tools", "tools", "remove 'tools' or pick a model that has them")
    if caps.get("vision") is False and _has_block(edit.body.get("messages"), "image_url"):
        raise _unsupported(
            model, "images", "vision", "remove the image parts or pick a vision model"
        )


def _clamp(edit: _Edit, keys: tuple[str, ...], limit: Any) -> None:
    if not isinstance(limit, int):
        return
    for key in keys:
        asked = edit.body.get(key)
        if isinstance(asked, int) and not isinstance(asked, bool) and asked > limit:
            edit.set(key, limit)
            edit.headers[CLAMPED] = f"{asked}->{limit}"
            edit.adjusted.append(f"{key} {asked}->{limit}")


def _fit_thinking_budget(edit: _Edit) -> None:
    """After a clamp, keep budget_tokens below max_tokens as the Messages API requires."""
    if CLAMPED not in edit.headers:
        return
    thinking = edit.body.get("thinking")
    max_tokens = edit.body.get("max_tokens")
    if not isinstance(thinking, dict) or not isinstance(max_tokens, int):
        return
    budget = thinking.get("budget_tokens")
    if isinstance(budget, int) and budget >= max_tokens:
        edit.set("thinking", {**thinking, "budget_tokens": max_tokens - 1})
        edit.converted.append(f"thinking.budget_tokens {budget}->{max_tokens - 1}")


def _has_block(messages: Any, block_type: str) -> bool:
    """Whether any message content (including tool results) holds a block of `block_type`."""
    if not isinstance(messages, list):
        return False
    stack: list[Any] = [m.get("content") for m in messages if isinstance(m, dict)]
    while stack:
        content = stack.pop()
        if not isinstance(content, list):
            continue
        for block in content:
            if isinstance(block, dict):
                if block.get("type") == block_type:
                    return True
                stack.append(block.get("content"))
    return False


def filter_betas(value: str | None, backend_kind: str, templates: TemplateSet) -> str | None:
    """The anthropic-beta value minus the betas the template's beta_policy drops for this backend kind."""
    if value is None:
        return None
    template = templates.get("anthropic")
    policy = template.doc.get("beta_policy", {}).get(backend_kind) if template else None
    drop = _drop_pattern(tuple(policy.get("drop", ()))) if policy else None
    if drop is None:
        return value if value.strip() else None
    kept = [b for b in (part.strip() for part in value.split(",")) if b and not drop.match(b)]
    return ",".join(kept) or None


@lru_cache(maxsize=64)
def _drop_pattern(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """Compiled once per distinct policy, so filtering never compiles on the request path."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))
