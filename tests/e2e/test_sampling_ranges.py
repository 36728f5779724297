"""Sampling parameters across dialects: fitted to the backend's range and named, or refused in the
client's dialect when the client's own API would refuse them. The fakes validate like the real APIs,
so each test also proves the unadjusted value would have been refused."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI

CLAUDE = "claude-sonnet-4-6"
USER = [{"role": "user", "content": "hi"}]


def test_the_fakes_refuse_what_the_real_apis_refuse(
    fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> None:
    ant = anthropic.Anthropic(base_url=fake_anthropic.url, api_key="k", max_retries=0)
    for extra in ({"temperature": 1.5}, {"top_k": -1}, {"top_p": 1.2}):
        with pytest.raises(anthropic.BadRequestError):
            # anthropic>=1 takes sampling parameters only through extra_body
            ant.messages.create(model=CLAUDE, max_tokens=8, messages=USER, extra_body=extra)
    oai = openai.OpenAI(base_url=fake_openai.base_url, api_key="k", max_retries=0)
    for extra in (
        {"temperature": 2.5},
        {"stop": ["a", "b", "c", "d", "e"]},
        {"presence_penalty": 3},
        {"frequency_penalty": -2.5},
        {"n": 0},
    ):
        with pytest.raises(openai.BadRequestError):
            oai.chat.completions.create(model="gpt-4o", messages=USER, **extra)  # type: ignore[arg-type]


def test_an_openai_temperature_above_1_is_clamped_for_an_anthropic_backend(
    openai_client: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    raw = openai_client.chat.completions.with_raw_response.create(
        model=CLAUDE, messages=USER, temperature=1.5, top_p=0.9, max_tokens=300000
    )
    assert raw.parse().choices[0].message.content == "echo: hi"
    assert fake_anthropic.last.json["temperature"] == 1.0
    assert fake_anthropic.last.json["top_p"] == 0.9
    assert raw.headers["x-driftgate-adjusted"] == ("temperature 1.5->1, max_tokens 300000->64000")


def test_a_temperature_both_apis_accept_is_sent_unchanged_and_not_named(
    openai_client: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    raw = openai_client.chat.completions.with_raw_response.create(
        model=CLAUDE, messages=USER, temperature=0.7, max_tokens=50
    )
    assert fake_anthropic.last.json["temperature"] == 0.7
    assert "x-driftgate-adjusted" not in raw.headers


def test_stop_sequences_past_openais_four_keep_the_first_four(
    anthropic_client: anthropic.Anthropic, fake_openai: FakeOpenAI
) -> None:
    raw = anthropic_client.messages.with_raw_response.create(
        model="gpt-4o",
        max_tokens=50,
        messages=USER,
        stop_sequences=["one", "two", "three", "four", "five", "six"],
        extra_body={"top_k": 5},
    )
    assert raw.parse().content[0].type == "text"
    sent = fake_openai.last.json
    assert sent["stop"] == ["one", "two", "three", "four"]
    assert "top_k" not in sent
    assert raw.headers["x-driftgate-adjusted"] == "stop_sequences 6->4"
    assert "top_k" in raw.headers["x-driftgate-dropped"].split(",")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"temperature": 2.5}, "temperature must be between 0 and 2, got 2.5"),
        ({"temperature": -0.1}, "temperature must be between 0 and 2, got -0.1"),
        ({"top_p": 1.5}, "top_p must be between 0 and 1, got 1.5"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop takes at most 4 sequences, got 5"),
    ],
)
def test_a_value_the_clients_own_api_refuses_is_a_400_in_its_dialect(
    openai_client: openai.OpenAI,
    fake_anthropic: FakeAnthropic,
    extra: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        openai_client.chat.completions.create(model=CLAUDE, messages=USER, **extra)  # type: ignore[call-overload]
    assert exc.value.body == {
        "message": message,
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert fake_anthropic.requests == []


def test_anthropic_client_values_beyond_anthropics_ranges_are_refused(
    gateway: object, fake_openai: FakeOpenAI
) -> None:
    url = gateway.url  # type: ignore[attr-defined]
    for extra, message in (
        ({"temperature": 1.5}, "temperature must be between 0 and 1, got 1.5"),
        ({"top_k": -1}, "top_k must be 0 or more, got -1"),
    ):
        r = httpx.post(
            url + "/v1/messages",
            json={"model": "gpt-4o", "max_tokens": 8, "messages": USER, **extra},
            headers={"anthropic-version": "2023-06-01"},
        )
        assert r.status_code == 400
        assert r.json() == {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": message},
        }
    assert fake_openai.requests == []
