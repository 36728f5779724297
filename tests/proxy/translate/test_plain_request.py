"""Plain-text requests built without the IR give what the IR path gives, or step aside for it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftgate.proxy.errors import Dialect, InvalidRequest
from driftgate.proxy.translate import through_ir, translate_request
from driftgate.proxy.translate.plain_request import BUILDERS

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PAIRS = sorted(BUILDERS)

texts = st.text(max_size=12) | st.sampled_from(["", "hi", 'é\n"x\\'])
# Values a plain builder takes, and some it must leave to the IR path (refused or adjusted).
numbers = st.sampled_from([0, 1, 0.5, 1.0, 0.95, 1.5, 2, 2.5, -1, True, "1", None, float("nan")])
token_counts = st.sampled_from([None, 1, 64, 4096, 0, -5, 64.0, True, "64"])
roles = st.sampled_from(["user", "assistant", "system", "developer", "tool", "function"])
odd_content = st.sampled_from([None, 5, [], [{"type": "text", "text": "x"}]])


valid_numbers = st.sampled_from([0, 1, 0.5, 1.0, 0.95])
valid_counts = st.sampled_from([None, 1, 64, 4096, 0])


@st.composite
def chat_like(draw: st.DrawFn, source: str, plain: bool | None = None) -> dict[str, Any]:
    """A request in `source`'s dialect: plain strings only (`plain`), or sometimes something a
    builder must leave to the IR path (`plain` None: either)."""
    if plain is None:
        plain = draw(st.booleans())

    def message() -> dict[str, Any]:
        role = draw(st.sampled_from(["user", "assistant", "system"]) if plain else roles)
        content = draw(texts if plain or draw(st.booleans()) else odd_content)
        m: dict[str, Any] = {"role": role, "content": content}
        if not plain and draw(st.integers(0, 5)) == 0:
            m["name"] = "n"
        return m

    body: dict[str, Any] = {"model": "client-model"}
    if source == "responses":
        if draw(st.booleans()):
            body["input"] = draw(texts)
        else:
            items = []
            for _ in range(draw(st.integers(0 if not plain else 1, 3))):
                item: dict[str, Any] = {"role": "user", "content": draw(st.text(min_size=1))}
                if draw(st.booleans()):
                    item["type"] = "message"
                if not plain and draw(st.booleans()):
                    item = message()
                items.append(item)
            body["input"] = items
        if draw(st.booleans()):
            body["instructions"] = draw(texts if plain else texts | odd_content)
        limit = "max_output_tokens"
    else:
        body["messages"] = [message() for _ in range(draw(st.integers(0, 7)))]
        if source == "anthropic" and draw(st.booleans()):
            body["system"] = draw(texts if plain else texts | odd_content)
        limit = (
            "max_tokens"
            if source == "anthropic"
            else draw(st.sampled_from(["max_tokens", "max_completion_tokens"]))
        )
    if draw(st.booleans()):
        body[limit] = draw(valid_counts if plain else token_counts)
    for key in ("temperature", "top_p"):
        if draw(st.booleans()):
            body[key] = draw(valid_numbers if plain else numbers)
    if source != "anthropic" and draw(st.booleans()):
        body["user"] = draw(texts if plain else texts | odd_content)
    if source == "responses" and draw(st.booleans()):
        body["store"] = draw(st.booleans())
    if not plain and draw(st.booleans()):
        body[draw(st.sampled_from(["n", "stop", "tools", "metadata", "future_field"]))] = 1
    return body


def _outcome(call: Any) -> Any:
    try:
        tr = call()
    except InvalidRequest as exc:
        return ("refused", str(exc))
    return (tr.body, tr.dropped, tr.adjusted)


@pytest.mark.parametrize(("source", "target"), PAIRS)
@SETTINGS
@given(data=st.data(), stream=st.booleans(), in_place=st.booleans())
def test_a_request_reads_the_same_with_or_without_its_plain_builder(
    source: Dialect, target: Dialect, data: st.DataObject, stream: bool, in_place: bool
) -> None:
    body = data.draw(chat_like(source))
    fast = _outcome(
        lambda: translate_request(
            body, source, target, model="m", stream=stream, mid_conversation_system=in_place
        )
    )
    slow = _outcome(lambda: through_ir(body, source, target, "m", stream, in_place))
    assert fast == slow


@pytest.mark.parametrize(("source", "target"), PAIRS)
@SETTINGS
@given(data=st.data(), stream=st.booleans(), in_place=st.booleans())
def test_a_plain_request_is_built_without_the_ir(
    source: Dialect, target: Dialect, data: st.DataObject, stream: bool, in_place: bool
) -> None:
    body = data.draw(chat_like(source, plain=True))
    built = BUILDERS[(source, target)](body, "m", stream, in_place)
    slow = through_ir(body, source, target, "m", stream, in_place)
    if built is None:  # only an empty assistant turn (Chat) is left to the IR path
        assert source == "openai" and any(
            m["role"] == "assistant" and not m["content"] for m in body["messages"]
        )
        return
    assert (built, (), ()) == (slow.body, slow.dropped, slow.adjusted)


@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_the_benchmark_shapes_take_the_plain_builders(source: Dialect, target: Dialect) -> None:
    build = BUILDERS[(source, target)]
    if source == "responses":
        bodies = [
            {"model": "m", "input": "Say hi", "instructions": "Be terse", "store": False},
            {"model": "m", "input": [{"type": "message", "role": "user", "content": "Say hi"}]},
        ]
    elif source == "openai":
        bodies = [{"model": "m", "max_tokens": 64, "messages": [
            {"role": "system", "content": "Be terse"}, {"role": "user", "content": "Say hi"}]}]  # fmt: skip
    else:
        bodies = [{"model": "m", "max_tokens": 64, "system": "Be terse",
                   "messages": [{"role": "user", "content": "Say hi"}]}]  # fmt: skip
    for body in bodies:
        built = build(body, "m", True, False)
        assert built is not None
        assert built == through_ir(body, source, target, "m", True, False).body


@pytest.mark.parametrize(
    ("source", "target", "body"),
    [
        ("openai", "anthropic", {"model": "m", "messages": [], "future": 1}),
        (
            "openai",
            "anthropic",
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 1.5},
        ),
        ("anthropic", "openai", {"model": "m", "messages": [{"role": "tool", "content": "x"}]}),
        ("responses", "anthropic", {"model": "m", "input": "x", "future": {"a": 1}}),
        ("responses", "openai", {"model": "m", "input": "x", "future": 1}),
    ],
)
def test_what_is_named_or_adjusted_goes_through_the_ir(
    source: Dialect, target: Dialect, body: dict[str, Any]
) -> None:
    assert BUILDERS[(source, target)](body, "m", False, False) is None
    tr = translate_request(body, source, target, model="m")
    assert tr.dropped or tr.adjusted
    with pytest.raises(InvalidRequest):  # a value the client's own API refuses: refused as before
        translate_request({**body, "max_tokens": True, "max_output_tokens": True,
                           "temperature": True}, source, target, model="m")  # fmt: skip
