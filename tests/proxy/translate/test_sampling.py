"""fit_sampling on the neutral request: checked against the client's API, fitted to the backend's."""

from __future__ import annotations

import pytest

from driftgate.proxy.errors import InvalidRequest
from driftgate.proxy.translate.ir import ChatRequest
from driftgate.proxy.translate.sampling import RANGES, fit_sampling


def req(**kw: object) -> ChatRequest:
    return ChatRequest(messages=(), **kw)  # type: ignore[arg-type]


def test_every_dialect_has_ranges() -> None:
    from typing import get_args

    from driftgate.proxy.errors import Dialect

    assert set(RANGES) == set(get_args(Dialect))


@pytest.mark.parametrize("source", ["openai", "responses"])
def test_openai_temperatures_above_1_are_clamped_for_anthropic(source: str) -> None:
    r = req(temperature=2.0, top_p=1.0)
    assert fit_sampling(r, source, "anthropic") == ("temperature 2->1",)  # type: ignore[arg-type]
    assert r.temperature == 1.0 and r.top_p == 1.0


def test_nothing_moves_within_both_ranges() -> None:
    r = req(temperature=0.2, top_p=0.5, stop=("a",))
    assert fit_sampling(r, "openai", "anthropic") == ()
    assert fit_sampling(r, "anthropic", "openai") == ()
    assert (r.temperature, r.top_p, r.stop) == (0.2, 0.5, ("a",))


def test_stop_sequences_are_cut_to_openais_four() -> None:
    r = req(stop=tuple("abcdef"))
    assert fit_sampling(r, "anthropic", "openai") == ("stop_sequences 6->4",)
    assert r.stop == ("a", "b", "c", "d")
    r = req(stop=tuple("abcdef"))
    assert fit_sampling(r, "anthropic", "responses") == ()  # no limit to fit there


@pytest.mark.parametrize(
    ("source", "fields", "message"),
    [
        ("anthropic", {"temperature": 1.2}, "temperature must be between 0 and 1, got 1.2"),
        ("openai", {"temperature": -1.0}, "temperature must be between 0 and 2, got -1"),
        ("responses", {"top_p": 1.5}, "top_p must be between 0 and 1, got 1.5"),
        ("anthropic", {"top_k": -3}, "top_k must be 0 or more, got -3"),
        ("openai", {"stop": tuple("abcde")}, "stop takes at most 4 sequences, got 5"),
    ],
)
def test_what_the_clients_own_api_refuses_is_refused(
    source: str, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        fit_sampling(req(**fields), source, "anthropic" if source != "anthropic" else "openai")  # type: ignore[arg-type]
