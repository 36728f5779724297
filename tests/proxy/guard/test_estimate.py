"""The spend guard's estimate: list prices per (model, dialect), remembered per template set."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from driftgate.proxy.guard.estimate import MEMO_LIMIT, PriceMemo, estimate_usd
from driftgate.proxy.templates import load_bundled
from driftgate.proxy.templates.loader import TemplateSet

BUNDLED = load_bundled()
BODY: dict[str, object] = {"model": "gpt-4o-mini", "max_tokens": 100, "messages": []}


def _repriced(templates: TemplateSet, model: str, input_price: float) -> TemplateSet:
    """A new set (as a reload makes) whose `model` has another input price."""
    openai = templates.get("openai")
    assert openai is not None
    doc = copy.deepcopy(dict(openai.doc))
    doc["models"][model]["pricing"]["input"] = input_price
    return TemplateSet({**templates.templates, "openai": dataclasses.replace(openai, doc=doc)})


def test_the_memo_answers_as_the_templates_do_and_a_new_set_is_priced_afresh() -> None:
    memo = PriceMemo()
    plain = estimate_usd(400, BODY, "gpt-4o-mini", "openai", BUNDLED, 4096)
    assert estimate_usd(400, BODY, "gpt-4o-mini", "openai", BUNDLED, 4096, memo) == plain
    assert estimate_usd(400, BODY, "gpt-4o-mini", "openai", BUNDLED, 4096, memo) == plain
    reloaded = _repriced(BUNDLED, "gpt-4o-mini", 100.0)
    after = estimate_usd(400, BODY, "gpt-4o-mini", "openai", reloaded, 4096, memo)
    assert after == pytest.approx((400 / 4 * 100.0 + 100 * 0.6) / 1e6)  # never the old price
    assert estimate_usd(400, BODY, "no-such-model", "openai", reloaded, 4096, memo) == 0.0


def test_the_memo_is_bounded() -> None:
    memo = PriceMemo()
    for n in range(MEMO_LIMIT + 5):
        memo.prices(f"model-{n}", "openai", BUNDLED)
    assert len(memo._tables) <= MEMO_LIMIT
    assert memo.prices("gpt-4o-mini", "openai", BUNDLED) is not None
