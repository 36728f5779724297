"""What a request may cost, reserved before it is forwarded: prompt bytes and max_tokens at list price."""

from __future__ import annotations

from driftgate.proxy.errors import Dialect
from driftgate.proxy.observe.pricing import Prices, prices
from driftgate.proxy.templates.loader import TemplateSet

# Output-limit fields of the three dialects; the first one present wins.
MAX_OUTPUT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
MEMO_LIMIT = 1024  # (model, dialect) price tables remembered per template set


class PriceMemo:
    """The template prices of each (model, dialect), looked up once per template set in force.

    A reload brings a new TemplateSet: the memo starts afresh on the first request routed with
    it, so an estimate never uses a price the templates no longer hold. Used on the event loop.
    """

    def __init__(self) -> None:
        self._of: TemplateSet | None = None
        self._tables: dict[tuple[str, str], Prices | None] = {}

    def prices(self, model: str, dialect: Dialect, templates: TemplateSet) -> Prices | None:
        """`pricing.prices(model, dialect, templates)`, remembered."""
        if templates is not self._of:
            self._of, self._tables = templates, {}
        key = (model, dialect)
        if key in self._tables:
            return self._tables[key]
        if len(self._tables) >= MEMO_LIMIT:
            self._tables.clear()
        table = self._tables[key] = prices(model, dialect, templates)
        return table


def estimate_usd(
    raw_size: int,
    body: dict[str, object],
    model: str,
    dialect: Dialect,
    templates: TemplateSet,
    default_max_tokens: int,
    memo: PriceMemo | None = None,
) -> float:
    """USD to reserve: ~4 bytes a prompt token plus every output token the request allows.

    An unpriced model reserves nothing (its spend is unknown both before and after). The estimate
    is an upper bound for the output and a usual-case bound for the input, so what concurrent
    requests can overspend is limited to their in-flight underestimates.
    """
    table = memo.prices(model, dialect, templates) if memo else prices(model, dialect, templates)
    if table is None or table[0] is None or table[1] is None:
        return 0.0
    out = default_max_tokens
    for name in MAX_OUTPUT_FIELDS:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            out = value
            break
    return (raw_size / 4 * table[0] + out * table[1]) / 1_000_000
