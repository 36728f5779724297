"""Template-driven normalisation: clamps, capability rejections and conversions, beta filtering."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftgate.proxy.config import BackendConfig
from driftgate.proxy.errors import InvalidRequest
from driftgate.proxy.normalise import ADJUSTED, CLAMPED, CONVERTED, filter_betas, normalise
from driftgate.proxy.routing import Route
from driftgate.proxy.templates import Template, TemplateSet, content_hash, load_bundled

BUNDLED = load_bundled()
ANTH = BackendConfig(name="anthropic", kind="anthropic", base_url="http://127.0.0.1:1")
OAI = BackendConfig(name="openai", kind="openai", base_url="http://127.0.0.1:1")


def route(model: str, backend: BackendConfig = ANTH) -> Route:
    return Route(backend, model, model)


def patched(
    name: str, model: str | None = None, top: dict[str, Any] | None = None, **facts: Any
) -> TemplateSet:
    """The bundled set with top-level fields or one model's facts replaced, as an overlay would do."""
    doc = copy.deepcopy(dict(BUNDLED.templates[name].doc))
    doc.update(top or {})
    if model is not None:
        doc["models"][model].update(facts)
    t = Template(name, "upstream", doc, content_hash(doc), "<test>")
    return TemplateSet({**BUNDLED.templates, name: t})


def msg(content: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": content}]


def run(body: dict[str, Any], model: str, templates: TemplateSet = BUNDLED, *, convert: bool = False,
        dialect: str = "anthropic") -> Any:  # fmt: skip
    backend = ANTH if dialect == "anthropic" else OAI
    return normalise(body, dialect, route(model, backend), templates, convert_unsupported=convert)  # type: ignore[arg-type]


def test_unknown_model_passes_through_untouched() -> None:
    body = {"model": "mystery", "max_tokens": 10**6, "thinking": {"type": "adaptive"}}
    out = run(body, "mystery")
    assert out.body is body and out.response_headers == {}


def test_nothing_applicable_returns_the_same_dict() -> None:
    body = {"model": "claude-opus-4-6", "max_tokens": 1024, "messages": msg("hi")}
    out = run(body, "claude-opus-4-6")
    assert out.body is body and out.response_headers == {}


def test_max_tokens_above_the_model_limit_is_clamped_on_a_copy() -> None:
    body = {"model": "claude-sonnet-4-6", "max_tokens": 200000, "messages": msg("hi")}
    out = run(body, "claude-sonnet-4-6")
    assert out.body["max_tokens"] == 64000
    assert out.response_headers == {
        CLAMPED: "200000->64000",
        ADJUSTED: "max_tokens 200000->64000",
    }
    assert body["max_tokens"] == 200000  # the caller's dict is untouched
    assert out.body["messages"] == body["messages"]


def test_clamp_keeps_an_explicit_thinking_budget_below_max_tokens() -> None:
    body: dict[str, Any] = {
        "max_tokens": 100000,
        "thinking": {"type": "enabled", "budget_tokens": 80000},
    }
    out = run(body, "claude-sonnet-4-6")
    assert out.body["max_tokens"] == 64000
    assert out.body["thinking"] == {"type": "enabled", "budget_tokens": 63999}
    assert body["thinking"]["budget_tokens"] == 80000
    assert "budget_tokens 80000->63999" in out.response_headers[CONVERTED]


def test_adaptive_thinking_on_a_model_without_it_is_rejected_by_default() -> None:
    body = {"max_tokens": 4096, "thinking": {"type": "adaptive"}}
    with pytest.raises(InvalidRequest) as exc:
        run(body, "claude-sonnet-4-5")
    assert "claude-sonnet-4-5" in exc.value.message
    assert "adaptive_thinking" in exc.value.message
    assert "convert_unsupported" in exc.value.message
    assert exc.value.status == 400


def test_adaptive_thinking_converts_to_enabled_with_a_budget() -> None:
    body = {"max_tokens": 4096, "thinking": {"type": "adaptive"}}
    out = run(body, "claude-sonnet-4-5", convert=True)
    assert out.body["thinking"] == {"type": "enabled", "budget_tokens": 4095}
    assert out.response_headers == {CONVERTED: "thinking.adaptive->enabled"}
    assert body["thinking"] == {"type": "adaptive"}
    big = run(
        {"max_tokens": 50000, "thinking": {"type": "adaptive"}}, "claude-opus-4-5", convert=True
    )
    assert big.body["thinking"]["budget_tokens"] == 16000


def test_adaptive_thinking_with_too_few_tokens_for_a_budget_is_dropped() -> None:
    out = run(
        {"max_tokens": 800, "thinking": {"type": "adaptive"}}, "claude-haiku-4-5", convert=True
    )
    assert "thinking" not in out.body
    assert out.response_headers[CONVERTED] == "thinking.adaptive->dropped"


def test_adaptive_thinking_passes_where_the_model_supports_it() -> None:
    body = {"max_tokens": 4096, "thinking": {"type": "adaptive"}}
    assert run(body, "claude-opus-4-6").body is body


def test_thinking_on_a_model_without_thinking_is_rejected_or_dropped() -> None:
    ts = patched("anthropic", "claude-haiku-4-5", capabilities={"thinking": False})
    body = {"max_tokens": 4096, "thinking": {"type": "enabled", "budget_tokens": 2048}}
    with pytest.raises(InvalidRequest, match="extended thinking"):
        run(body, "claude-haiku-4-5", ts)
    out = run(body, "claude-haiku-4-5", ts, convert=True)
    assert "thinking" not in out.body and "thinking" in body
    assert out.response_headers[CONVERTED] == "thinking->dropped"
    disabled = {"max_tokens": 10, "thinking": {"type": "disabled"}}
    assert run(disabled, "claude-haiku-4-5", ts).body is disabled


def test_images_on_a_model_without_vision_are_rejected_even_inside_tool_results() -> None:
    ts = patched("anthropic", "claude-haiku-4-5", capabilities={"vision": False})
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "AA=="},
    }
    tool_result = {"type": "tool_result", "tool_use_id": "t1", "content": [image]}
    with pytest.raises(InvalidRequest, match="images"):
        run({"max_tokens": 10, "messages": msg([image])}, "claude-haiku-4-5", ts)
    with pytest.raises(InvalidRequest, match="vision"):
        run(
            {"max_tokens": 10, "messages": msg([tool_result])}, "claude-haiku-4-5", ts, convert=True
        )
    text_only = {"max_tokens": 10, "messages": msg([{"type": "text", "text": "hi"}])}
    assert run(text_only, "claude-haiku-4-5", ts).body is text_only


def test_tools_on_a_model_without_tools_are_rejected() -> None:
    ts = patched("anthropic", "claude-haiku-4-5", capabilities={"tools": False})
    body = {"max_tokens": 10, "tools": [{"name": "x", "input_schema": {"type": "object"}}]}
    with pytest.raises(InvalidRequest, match="tools"):
        run(body, "claude-haiku-4-5", ts, convert=True)


def test_openai_reasoning_effort_rejected_or_dropped_on_non_reasoning_models() -> None:
    body = {"model": "gpt-4o", "reasoning_effort": "high", "messages": msg("hi")}
    with pytest.raises(InvalidRequest, match="reasoning_effort"):
        run(body, "gpt-4o", dialect="openai")
    out = run(body, "gpt-4o", dialect="openai", convert=True)
    assert "reasoning_effort" not in out.body and body["reasoning_effort"] == "high"
    assert out.response_headers == {CONVERTED: "reasoning_effort->dropped"}
    reasoning = {"reasoning_effort": "low"}
    assert run(reasoning, "gpt-5.4", dialect="openai").body is reasoning


def test_translated_reasoning_is_dropped_not_rejected_on_a_model_without_it() -> None:
    body = {"model": "gpt-4o", "reasoning_effort": "low", "max_completion_tokens": 50000}
    out = normalise(body, "openai", route("gpt-4o", OAI), BUNDLED, convert_unsupported=False,
                    translated=True)  # fmt: skip
    assert out.body == {"model": "gpt-4o", "max_tokens": 16384}  # renamed back, then clamped
    assert out.dropped == ("thinking",)
    assert CONVERTED not in out.response_headers
    ts = patched("anthropic", "claude-haiku-4-5", capabilities={"thinking": False})
    ant = {"max_tokens": 4096, "thinking": {"type": "enabled", "budget_tokens": 2048}}
    out = normalise(ant, "anthropic", route("claude-haiku-4-5"), ts, convert_unsupported=False,
                    translated=True)  # fmt: skip
    assert "thinking" not in out.body and out.dropped == ("reasoning_effort",)
    keep = {"reasoning_effort": "low"}
    out = normalise(keep, "openai", route("gpt-5.4", OAI), BUNDLED, convert_unsupported=False,
                    translated=True)  # fmt: skip
    assert out.body is keep and out.dropped == ()


def test_openai_both_token_limits_are_clamped() -> None:
    out = run({"max_tokens": 50000}, "gpt-4o", dialect="openai")
    assert out.body == {"max_tokens": 16384}
    assert out.response_headers == {CLAMPED: "50000->16384", ADJUSTED: "max_tokens 50000->16384"}
    out = run({"max_completion_tokens": 20000}, "gpt-4o-mini", dialect="openai")
    assert out.body == {"max_completion_tokens": 16384}


def test_openai_image_parts_on_a_model_without_vision_are_rejected() -> None:
    ts = patched("openai", "gpt-4o-mini", capabilities={"vision": False})
    part = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}
    with pytest.raises(InvalidRequest, match="gpt-4o-mini"):
        run({"messages": msg([part])}, "gpt-4o-mini", ts, dialect="openai")


def test_the_dialect_picks_the_template() -> None:
    # gpt-4o is not in the anthropic template: an anthropic-dialect body for it passes untouched
    body = {"max_tokens": 10**6}
    assert run(body, "gpt-4o").body is body


def test_filter_betas_drops_by_policy_and_keeps_unknown_betas() -> None:
    assert filter_betas(None, "openai", BUNDLED) is None
    assert filter_betas("interleaved-thinking-2025-05-14,brand-new-beta", "openai", BUNDLED) is None
    value = "interleaved-thinking-2025-05-14, brand-new-beta"
    assert filter_betas(value, "anthropic", BUNDLED) == value


def test_filter_betas_with_a_pattern_policy() -> None:
    ts = patched("anthropic", top={"beta_policy": {"anthropic": {"drop": ["context-1m-*"]}}})
    value = "context-1m-2025-08-07, interleaved-thinking-2025-05-14,brand-new-beta"
    assert filter_betas(value, "anthropic", ts) == "interleaved-thinking-2025-05-14,brand-new-beta"
    assert filter_betas("context-1m-2025-08-07", "anthropic", ts) is None
    assert filter_betas("", "anthropic", BUNDLED) is None


@settings(max_examples=200, deadline=None)
@given(
    model=st.sampled_from(sorted(BUNDLED.templates["anthropic"].doc["models"])),
    max_tokens=st.integers(min_value=1, max_value=300_000),
    thinking=st.sampled_from(
        [
            None,
            {"type": "adaptive"},
            {"type": "disabled"},
            {"type": "enabled", "budget_tokens": 5000},
        ]
    ),
)
def test_normalise_never_mutates_the_caller_and_respects_limits(
    model: str, max_tokens: int, thinking: dict[str, Any] | None
) -> None:
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": msg("hi")}
    if thinking is not None:
        body["thinking"] = thinking
    before = copy.deepcopy(body)
    out = run(body, model, convert=True)
    assert body == before
    limit = BUNDLED.templates["anthropic"].doc["models"][model]["max_output_tokens"]
    assert out.body["max_tokens"] == min(max_tokens, limit)
    budget = (out.body.get("thinking") or {}).get("budget_tokens")
    if budget is not None and "budget_tokens" in (out.response_headers.get(CONVERTED) or ""):
        assert budget < out.body["max_tokens"]
    if (out.body.get("thinking") or {}).get("type") == "enabled" and thinking == {
        "type": "adaptive"
    }:
        assert 1024 <= budget < out.body["max_tokens"]  # type: ignore[operator]
