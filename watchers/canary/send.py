"""Send one probe to its backend, as the gateway would authenticate, and keep what came back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from driftgate.proxy.config import BackendConfig
from driftgate.watchers.canary.probes import Probe
from driftgate.watchers.network_errors import in_words

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"


@dataclass(frozen=True)
class Answer:
    """An upstream's answer to a probe; `error` is set when no HTTP answer arrived."""

    status: int | None
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None


def probe_url(backend: BackendConfig) -> str:
    """Where the probes of this backend go."""
    base = backend.base_url.rstrip("/")
    return base + ("/v1/messages" if backend.kind == "anthropic" else "/chat/completions")


def probe_headers(backend: BackendConfig, key: str, api_version: str | None) -> dict[str, str]:
    """The backend's own supported authentication, as the gateway sends it."""
    if backend.kind == "anthropic":
        return {"x-api-key": key, "anthropic-version": api_version or DEFAULT_ANTHROPIC_VERSION}
    return {"authorization": f"Bearer {key}"}


def send(client: httpx.Client, url: str, headers: Mapping[str, str], probe: Probe) -> Answer:
    """POST the probe; transport failures become an Answer with `error` (never an exception)."""
    try:
        response = client.post(url, json=dict(probe.body), headers={**headers, **probe.headers})
    except httpx.HTTPError as exc:
        return Answer(None, error=f"no answer: {in_words(exc)}"[:200])
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:500]
    return Answer(response.status_code, body, dict(response.headers))
