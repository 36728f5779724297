"""The common request shapes take shorter paths through the parsers: same result as the long ones."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from driftgate.proxy.errors import Dialect
from driftgate.proxy.translate import translate_request

texts = st.text(min_size=1)


def _both(short: dict[str, Any], long: dict[str, Any], source: Dialect, target: Dialect) -> None:
    a = translate_request(short, source, target, model="m", stream=True)
    b = translate_request(long, source, target, model="m", stream=True)
    assert (a.body, a.dropped, a.adjusted) == (b.body, b.dropped, b.adjusted)


@settings(max_examples=60, deadline=None)
@given(texts, texts, st.sampled_from(["anthropic", "openai"]))
def test_a_responses_user_item_as_a_string_reads_like_its_parts(
    system: str, text: str, target: Dialect
) -> None:
    short = {"model": "m", "instructions": system,
             "input": [{"type": "message", "role": "user", "content": text}]}  # fmt: skip
    long = {"model": "m", "instructions": system,
            "input": [{"role": "user", "content": [{"type": "input_text", "text": text}]}]}  # fmt: skip
    _both(short, long, "responses", target)
    _both(short, {"model": "m", "instructions": system, "input": text}, "responses", target)


@settings(max_examples=60, deadline=None)
@given(texts, texts)
def test_a_chat_user_message_as_a_string_reads_like_its_parts(system: str, text: str) -> None:
    short = {"model": "m", "messages": [{"role": "system", "content": system},
                                        {"role": "user", "content": text}]}  # fmt: skip
    long = {"model": "m", "messages": [
        {"role": "system", "content": [{"type": "text", "text": system}]},
        {"role": "user", "content": [{"type": "text", "text": text}]}]}  # fmt: skip
    _both(short, long, "openai", "anthropic")


@settings(max_examples=60, deadline=None)
@given(texts, texts)
def test_an_anthropic_turn_as_a_string_reads_like_its_block(system: str, text: str) -> None:
    short = {"model": "m", "max_tokens": 9, "system": system,
             "messages": [{"role": "user", "content": text}]}  # fmt: skip
    long = {"model": "m", "max_tokens": 9, "system": [{"type": "text", "text": system}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]}  # fmt: skip
    _both(short, long, "anthropic", "openai")


def test_what_a_responses_text_setting_leaves_out_is_named() -> None:
    body = {"model": "m", "input": "hi",
            "text": {"verbosity": "low", "format": {"type": "future_format"}}}  # fmt: skip
    tr = translate_request(body, "responses", "anthropic", model="m")
    assert "text.verbosity" in tr.dropped and "text.format.future_format" in tr.dropped
