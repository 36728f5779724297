"""Estimated cost of a request from the template's prices (USD per million tokens)."""

from __future__ import annotations

from driftgate.proxy.errors import Dialect
from driftgate.proxy.templates.loader import TemplateSet

Prices = tuple[float | None, float | None, float | None, float | None]  # input, output, cache r/w


def prices(model: str, dialect: Dialect, templates: TemplateSet) -> Prices | None:
    """USD per MTok (input, output, cache read, cache write) from the template; None if unpriced."""
    template = templates.get("openai" if dialect == "responses" else dialect)
    if template is None:
        return None
    models = template.doc["models"]
    facts = models.get(model) or models.get(template.doc["aliases"].get(model, ""))
    pricing = facts.get("pricing") if facts else None
    if not pricing:
        return None
    found = tuple(pricing.get(k) for k in ("input", "output", "cache_read", "cache_write"))
    return tuple(None if v is None else float(v) for v in found)  # type: ignore[return-value]


def priced(
    table: Prices | None,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
) -> float | None:
    """USD for these counts at `table`'s prices; None when a needed price is missing.

    input_tokens excludes cache reads and writes (Anthropic's meaning; OpenAI's prompt_tokens
    minus cached_tokens). An unknown cache price matters only when that count is non-zero.
    """
    if table is None:
        return None
    p_in, p_out, p_read, p_write = table
    if p_in is None or p_out is None:
        return None
    total = input_tokens * p_in + output_tokens * p_out
    for count, price in ((cache_read_tokens, p_read), (cache_write_tokens, p_write)):
        if count:
            if price is None:
                return None
            total += count * price
    return total / 1_000_000


def cost_usd(
    model: str,
    dialect: Dialect,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
    templates: TemplateSet,
) -> float | None:
    """USD from the template's per-MTok prices; None when the model or a needed price is unknown."""
    table = prices(model, dialect, templates)
    return priced(table, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
