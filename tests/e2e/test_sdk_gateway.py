"""Gateway-wide behaviour seen through the SDKs: routing, /v1/models, /health, estimates, templates, auth."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI

USER = [{"role": "user", "content": "route me"}]


@pytest.fixture
def routed(gateway_factory: Any, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI) -> Any:
    """Three backends: anthropic, openai (gpt-*), and 'groq' claiming llama-* (the same fake OpenAI)."""
    return gateway_factory(
        backends=[
            fake_anthropic.backend(),
            fake_openai.backend(models=["gpt-*"]),
            fake_openai.backend("groq", models=["llama-*"], key="gsk-fake-groq-key"),
        ]
    )


def test_forced_prefix_aliases_and_globs(
    routed: Any, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> None:
    client = openai.OpenAI(base_url=routed.url + "/v1", api_key="k", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="openai:gpt-4o", messages=USER)
    assert raw.headers["x-driftgate-backend"] == "openai"
    assert fake_openai.last.json["model"] == "gpt-4o"  # the prefix is stripped
    raw = client.chat.completions.with_raw_response.create(model="llama-3.3-70b", messages=USER)
    assert raw.headers["x-driftgate-backend"] == "groq"
    assert fake_openai.last.headers["authorization"] == "Bearer gsk-fake-groq-key"
    ant = anthropic.Anthropic(base_url=routed.url, api_key="k", max_retries=0)
    for alias, model in (
        ("opus", "claude-opus-4-6"),
        ("sonnet", "claude-sonnet-4-6"),
        ("haiku", "claude-haiku-4-5"),
    ):
        msg = ant.messages.create(model=alias, max_tokens=20, messages=USER)
        assert msg.content[0].text == "echo: route me"
        assert fake_anthropic.last.json["model"] == model


def test_unroutable_model_lists_what_is_routable(routed: Any, fake_openai: FakeOpenAI) -> None:
    client = openai.OpenAI(base_url=routed.url + "/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.NotFoundError) as exc:
        client.chat.completions.create(model="mistral-large", messages=USER)
    message = exc.value.message
    assert "mistral-large" in message and "Routable" in message
    assert "groq" in message and "llama-*" in message
    ant = anthropic.Anthropic(base_url=routed.url, api_key="k", max_retries=0)
    with pytest.raises(anthropic.NotFoundError, match="nobody:x"):
        ant.messages.create(model="nobody:x", max_tokens=5, messages=USER)
    assert fake_openai.requests == []


def test_models_list_in_each_sdk_shape(gateway: Any) -> None:
    ant = anthropic.Anthropic(base_url=gateway.url, api_key="k", max_retries=0)
    oai = openai.OpenAI(base_url=gateway.url + "/v1", api_key="k", max_retries=0)
    ant_ids = {m.id for m in ant.models.list()}
    oai_models = list(oai.models.list())
    assert {"claude-sonnet-4-6", "gpt-4o", "sonnet"} <= ant_ids
    assert {m.id for m in oai_models} == ant_ids
    owners = {m.id: m.owned_by for m in oai_models}
    assert owners["gpt-4o"] == "openai" and owners["claude-opus-4-6"] == "anthropic"


def test_health_reports_templates_with_hashes(gateway: Any) -> None:
    r = httpx.get(gateway.url + "/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    names = {t["name"]: t for t in body["templates"]}
    assert {"anthropic", "openai"} <= set(names)
    assert names["anthropic"]["hash"].startswith("sha256:")


def test_count_tokens_for_an_openai_backend_is_an_estimate(
    anthropic_client: anthropic.Anthropic, fake_openai: FakeOpenAI
) -> None:
    raw = anthropic_client.messages.with_raw_response.count_tokens(
        model="gpt-4o", messages=[{"role": "user", "content": "x" * 400}]
    )
    assert raw.headers["x-driftgate-token-estimate"] == "true"
    assert 90 <= raw.parse().input_tokens <= 130
    assert fake_openai.requests == []  # nothing billed upstream


def test_max_tokens_over_the_template_limit_is_clamped(
    anthropic_client: anthropic.Anthropic, fake_anthropic: FakeAnthropic
) -> None:
    # The SDK insists on streaming for a max_tokens this large, as Claude Code does.
    with anthropic_client.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=200000,
        messages=USER,
    ) as stream:
        headers = stream.response.headers
        final = stream.get_final_message()
    assert headers["x-driftgate-max-tokens-clamped"] == "200000->64000"
    assert headers["x-driftgate-adjusted"] == "max_tokens 200000->64000"
    assert fake_anthropic.last.json["max_tokens"] == 64000
    assert final.content[0].text == "echo: route me"


def test_adaptive_thinking_rejected_where_the_template_says_so(
    anthropic_client: anthropic.Anthropic, fake_anthropic: FakeAnthropic
) -> None:
    with pytest.raises(anthropic.BadRequestError, match="adaptive") as exc:
        anthropic_client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=4000,
            thinking={"type": "adaptive"},
            messages=USER,
        )
    assert "convert_unsupported" in exc.value.message
    assert fake_anthropic.requests == []
    msg = anthropic_client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=4000,
        thinking={"type": "adaptive"},
        messages=USER,
    )
    assert fake_anthropic.last.json["thinking"] == {"type": "adaptive"}
    assert [b.type for b in msg.content] == ["thinking", "text"]


def test_adaptive_thinking_converted_when_configured(
    gateway_factory: Any, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic], convert_unsupported=True)
    client = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0)
    raw = client.messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=4000,
        thinking={"type": "adaptive"},
        messages=USER,
    )
    assert "thinking.adaptive->enabled" in raw.headers["x-driftgate-converted"]
    sent = fake_anthropic.last.json["thinking"]
    assert sent["type"] == "enabled" and 1024 <= sent["budget_tokens"] < 4000
    assert raw.parse().content[-1].text == "echo: route me"


def test_gateway_key_is_required_when_configured(
    gateway_factory: Any, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> None:
    gw = gateway_factory(
        backends=[fake_anthropic, fake_openai.backend(models=["gpt-*"])],
        api_key="dg-gateway-secret",
    )
    wrong_ant = anthropic.Anthropic(base_url=gw.url, api_key="not-it", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError, match="DRIFTGATE_API_KEY"):
        wrong_ant.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=USER)
    wrong_oai = openai.OpenAI(base_url=gw.url + "/v1", api_key="not-it", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong_oai.chat.completions.create(model="gpt-4o", messages=USER)
    assert fake_anthropic.requests == [] and fake_openai.requests == []
    right = anthropic.Anthropic(base_url=gw.url, api_key="dg-gateway-secret", max_retries=0)
    msg = right.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=USER)
    assert msg.content[0].text == "echo: route me"
    assert "dg-gateway-secret" not in str(dict(fake_anthropic.last.headers))
    right_oai = openai.OpenAI(base_url=gw.url + "/v1", api_key="dg-gateway-secret", max_retries=0)
    assert (
        right_oai.chat.completions.create(model="gpt-4o", messages=USER).choices[0].message.content
    )
    assert fake_openai.last.headers["authorization"] == "Bearer sk-openai-fake-test-key"
