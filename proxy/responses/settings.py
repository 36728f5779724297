"""[responses]: how long and how much of the Responses conversations the gateway keeps itself
(for backends that keep none; declared for the strict loader, see proxy/config_schema.py)."""

from __future__ import annotations

from dataclasses import dataclass

from driftgate.proxy.config_schema import setting

DAY = 24 * 3600.0


@dataclass(frozen=True)
class ResponsesSettings:
    """[responses]: the store behind `previous_response_id` and `item_reference` (docs/responses.md)."""

    store_ttl_seconds: float = setting(
        30 * DAY,
        "how long a stored response can be continued (OpenAI keeps them 30 days)",
        min=60,
        max=365 * DAY,
    )
    store_max_items: int = setting(
        20_000, "the most stored responses kept; past it the oldest are deleted first", min=1
    )
    store_max_bytes: int = setting(
        256 * 1024 * 1024,
        "the most bytes of stored conversation items; past it the oldest responses go first",
        min=4096,
    )
