"""The intake: `stream` decided once, a non-boolean refused in the client's dialect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest

from driftgate.proxy.errors import InvalidRequest
from driftgate.proxy.intake import wants_stream
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI

Factory = Callable[..., Any]


@pytest.mark.parametrize(("value", "expected"), [(None, False), (False, False), (True, True)])
def test_stream_is_a_boolean_or_absent(value: Any, expected: bool) -> None:
    assert wants_stream(value) is expected


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("true", "a string"),
        (1, "a number"),
        (0, "a number"),
        ([True], "an array"),
        ({}, "an object"),
    ],
)
def test_a_non_boolean_stream_is_refused_naming_its_kind(value: Any, kind: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        wants_stream(value)
    assert info.value.status == 400 and kind in info.value.message
    assert "`stream` must be true or false" in info.value.message


@pytest.mark.parametrize("value", ["true", 1])
def test_openai_client_on_a_translated_route_gets_a_400_and_nothing_goes_upstream(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, value: Any
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="claude-sonnet-4-6",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"stream": value},
        )
    assert info.value.status_code == 400
    err = info.value.body
    assert isinstance(err, dict) and err["type"] == "invalid_request_error"
    assert "`stream` must be true or false" in err["message"]
    assert fake_anthropic.requests == []  # a real provider would have run (and billed) it


@pytest.mark.parametrize("value", ["true", 1])
def test_anthropic_client_on_a_translated_route_gets_a_400_and_nothing_goes_upstream(
    gateway_factory: Factory, fake_openai: FakeOpenAI, value: Any
) -> None:
    gw = gateway_factory(backends=[fake_openai.backend(models=["gpt-*"])])
    client = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(
            model="gpt-4o",
            max_tokens=16,
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"stream": value},
        )
    body = info.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "`stream` must be true or false" in body["error"]["message"]
    assert fake_openai.requests == []


def test_stream_true_and_false_still_work_across_dialects(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="k", max_retries=0)
    whole = client.chat.completions.create(
        model="claude-sonnet-4-6", messages=[{"role": "user", "content": "a"}], stream=False
    )
    assert whole.choices[0].message.content == "echo: a"
    assert "stream" not in fake_anthropic.last.json
    chunks = client.chat.completions.create(
        model="claude-sonnet-4-6", messages=[{"role": "user", "content": "b"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: b"
    assert fake_anthropic.last.json["stream"] is True
