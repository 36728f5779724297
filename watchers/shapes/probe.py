"""What the gateway's translation does with an observed fact, per backend kind: each fact is put
in a minimal request of the client's dialect and run through the real translator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from driftgate.proxy.errors import Dialect, DriftgateError
from driftgate.proxy.translate import translate_request

# Each client dialect and the backend kinds its requests are translated for.
TARGETS: dict[str, tuple[Dialect, ...]] = {
    "anthropic": ("openai",),
    "openai": ("anthropic",),
    "responses": ("anthropic",),
}
_SAMPLE = {"string": "x", "number": 1, "boolean": True, "object": {}, "array": [], "null": None}
# Enough of each known Anthropic block for it to parse; the rest get only their type.
_BLOCKS: dict[str, tuple[str, dict[str, Any]]] = {
    "text": ("user", {"text": "x"}),
    "image": ("user", {"source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}),
    "tool_use": ("assistant", {"id": "t1", "name": "n", "input": {}}),
    "tool_result": ("user", {"tool_use_id": "t1", "content": "x"}),
    "thinking": ("assistant", {"thinking": "x", "signature": "s"}),
    "redacted_thinking": ("assistant", {"data": "x"}),
}


def _base() -> dict[str, Any]:
    return {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "x"}]}


def probe_body(kind: str, name: str, types: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """A minimal request carrying one fact, or None for kinds the translator does not see."""
    body = _base()
    if kind == "fields":
        if name in body:
            return None
        body[name] = _SAMPLE.get(types[0] if types else "string", "x")
    elif kind == "roles":
        body["messages"].append({"role": name, "content": "x"})
        body["messages"].append({"role": "user", "content": "x"})
    elif kind == "block_types":
        role, rest = _BLOCKS.get(name, ("user", {}))
        body["messages"] = [{"role": role, "content": [{"type": name, **rest}]}]
        if role == "assistant":
            body["messages"].insert(0, {"role": "user", "content": "x"})
            body["messages"].append({"role": "user", "content": "x"})
    else:
        return None
    return body


def untranslated(
    dialect: Dialect, facts: Mapping[str, Mapping[str, tuple[str, ...]]]
) -> list[tuple[str, str, str, str]]:
    """(backend kind, fact kind, name, what happens) for each fact the translation drops or refuses."""
    out: list[tuple[str, str, str, str]] = []
    for target in TARGETS.get(dialect, ()):
        for kind, names in facts.items():
            for name, types in names.items():
                body = probe_body(kind, name, types)
                if body is None:
                    continue
                try:
                    result = translate_request(body, dialect, target, model="m")
                except DriftgateError as exc:
                    out.append((target, kind, name, f"refused: {exc}"))
                    continue
                if result.dropped:
                    out.append((target, kind, name, "dropped: " + ", ".join(result.dropped)))
    return out
