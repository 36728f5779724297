"""GET /v1/models in the shape the asking client's SDK expects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EPOCH_ISO = (
    "1970-01-01T00:00:00Z"  # templates do not record release dates; a fixed, parseable value
)


def wants_anthropic_shape(headers: Mapping[str, str]) -> bool:
    """Anthropic SDKs send anthropic-version or x-api-key; everything else gets the OpenAI shape."""
    return "anthropic-version" in headers or "x-api-key" in headers


def display_name(model_id: str) -> str:
    """A readable name: `claude-sonnet-4-6` -> `Claude Sonnet 4.6`."""
    parts = model_id.split("-")
    words: list[str] = []
    for part in parts:
        if part.isdigit() and words and words[-1][-1:].isdigit() and len(part) <= 2:
            words[-1] = f"{words[-1]}.{part}"
        else:
            words.append(part.capitalize() if part.isalpha() else part)
    return " ".join(words)


def anthropic_models(routable: list[tuple[str, str]]) -> dict[str, Any]:
    """The Anthropic list shape."""
    data = [
        {"type": "model", "id": mid, "display_name": display_name(mid), "created_at": EPOCH_ISO}
        for mid, _backend in routable
    ]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def openai_models(routable: list[tuple[str, str]]) -> dict[str, Any]:
    """The OpenAI list shape; owned_by names the backend that serves the model."""
    return {
        "object": "list",
        "data": [
            {"id": mid, "object": "model", "created": 0, "owned_by": backend}
            for mid, backend in routable
        ],
    }
