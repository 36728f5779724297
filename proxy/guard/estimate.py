"""What a request may cost, reserved before it is forwarded: prompt bytes and max_tokens at list price."""

from __future__ import annotations

from driftgate.proxy.errors import Dialect
from driftgate.proxy.observe.pricing import prices
from driftgate.proxy.templates.loader import TemplateSet

# Output-limit fields of the three dialects; the first one present wins.
MAX_OUTPUT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


def estimate_usd(
    raw_size: int,
    body: dict[str, object],
    model: str,
    dialect: Dialect,
    templates: TemplateSet,
    default_max_tokens: int,
) -> float:
    """USD to reserve: ~4 bytes a prompt token plus every output token the request allows.

    An unpriced model reserves nothing (its spend is unknown both before and after). The estimate
    is an upper bound for the output and a usual-case bound for the input, so what concurrent
    requests can overspend is limited to their in-flight underestimates.
    """
    table = prices(model, dialect, templates)
    if table is None or table[0] is None or table[1] is None:
        return 0.0
    out = default_max_tokens
    for name in MAX_OUTPUT_FIELDS:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            out = value
            break
    return (raw_size / 4 * table[0] + out * table[1]) / 1_000_000
