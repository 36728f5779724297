"""Client request headers through a running gateway, with the official SDKs as clients.

Same dialect, every header the gateway does not own arrives at the fake upstream as sent (the
credential replaced by the backend's key, hop-by-hop fields and those named in Connection never
forwarded). Across dialects, the other vendor's headers are dropped and named in
`x-driftgate-dropped` as `header:NAME`; neutral ones (session ids, x-stainless-*, user-agent)
arrive. Hypothesis sends random valid header names and values: never a gateway-made error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftgate.proxy.client_headers import CREDENTIAL, OWNED, classify
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI

CLIENT_KEY = "sk-client-secret-0000"
CUSTOM = {
    "x-claude-code-session-id": "9d1b7c1e-session",
    "session-id": "codex-session-42",
    "x-codex-turn-metadata": '{"turn":3,"sandbox":"workspace-write"}',
    "x-future-thing": 'v=1; mode="quoted"',
}


def _dropped(resp: Any) -> list[str]:
    value = resp.headers.get("x-driftgate-dropped", "")
    return [n for n in value.split(",") if n]


def _stainless(sent: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in sent.items() if k.lower().startswith("x-stainless-")}


def test_anthropic_sdk_same_dialect_headers_arrive_untouched(
    gateway: Any, fake_anthropic: FakeAnthropic
) -> None:
    client = anthropic.Anthropic(
        base_url=gateway.url, api_key=CLIENT_KEY, max_retries=0, default_headers=CUSTOM
    )
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-6",
        max_tokens=64,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-app": "cli", "anthropic-beta": "interleaved-thinking-2025-05-14"},
    )
    got = fake_anthropic.last.headers
    sent = raw.http_response.request.headers
    for name, value in CUSTOM.items():
        assert got[name] == value
    assert got["x-app"] == "cli"
    assert got["user-agent"] == sent["user-agent"]  # the SDK's own, not driftgate's
    assert got["anthropic-version"] == sent["anthropic-version"]
    assert got["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    stainless = _stainless(sent)
    assert stainless and _stainless(got) == stainless
    assert got["x-api-key"] == "sk-ant-fake-test-key"  # the backend's key replaces the client's
    assert CLIENT_KEY not in str(list(got.items()))
    assert "x-driftgate-dropped" not in raw.headers


def test_openai_sdk_same_dialect_headers_arrive_untouched(
    gateway: Any, fake_openai: FakeOpenAI
) -> None:
    client = openai.OpenAI(
        base_url=gateway.url + "/v1", api_key=CLIENT_KEY, max_retries=0, default_headers=CUSTOM
    )
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={
            "originator": "codex_cli_rs",
            "x-client-request-id": "rq-1",
            "OpenAI-Beta": "responses=experimental",
        },
    )
    got = fake_openai.last.headers
    sent = raw.http_response.request.headers
    for name, value in {**CUSTOM, "originator": "codex_cli_rs", "x-client-request-id": "rq-1",
                        "openai-beta": "responses=experimental"}.items():  # fmt: skip
        assert got[name] == value
    assert got["user-agent"] == sent["user-agent"]
    stainless = _stainless(sent)
    assert stainless and _stainless(got) == stainless
    assert got["authorization"] == "Bearer sk-openai-fake-test-key"
    assert "x-driftgate-dropped" not in raw.headers


def test_anthropic_client_to_openai_backend_drops_and_names_vendor_headers(
    gateway: Any, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = anthropic.Anthropic(
        base_url=gateway.url, api_key=CLIENT_KEY, max_retries=0, default_headers=CUSTOM
    )
    raw = client.messages.with_raw_response.create(
        model="gpt-4o",
        max_tokens=64,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"anthropic-beta": "context-1m-2025-08-07", "x-app": "cli"},
    )
    got = fake_openai.last.headers
    sent = raw.http_response.request.headers
    assert not [k for k in got if k.lower().startswith("anthropic-")]
    dropped = _dropped(raw)
    # The betas are lost; anthropic-version was the dialect the gateway read: not named.
    assert "header:anthropic-beta" in dropped and "header:anthropic-version" not in dropped
    assert not [n for n in dropped if n.startswith("header:") and "anthropic-" not in n]
    for name, value in CUSTOM.items():
        assert got[name] == value
    assert got["x-app"] == "cli" and got["user-agent"] == sent["user-agent"]
    assert _stainless(got) == _stainless(sent)
    assert got["authorization"] == "Bearer sk-openai-fake-test-key" and "x-api-key" not in got
    assert CLIENT_KEY not in raw.headers.get("x-driftgate-dropped", "")
    assert CLIENT_KEY not in caplog.text


def test_openai_client_to_anthropic_backend_drops_and_names_vendor_headers(
    gateway: Any, fake_anthropic: FakeAnthropic
) -> None:
    client = openai.OpenAI(
        base_url=gateway.url + "/v1", api_key=CLIENT_KEY, max_retries=0, default_headers=CUSTOM
    )
    with client.chat.completions.with_streaming_response.create(
        model="claude-sonnet-4-6",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        extra_headers={"OpenAI-Beta": "assistants=v2", "openai-organization": "org-1"},
    ) as resp:
        list(resp.iter_lines())
        dropped = _dropped(resp)
        sent = resp.http_response.request.headers
    got = fake_anthropic.last.headers
    assert sorted(n for n in dropped if n.startswith("header:")) == [
        "header:openai-beta",
        "header:openai-organization",
    ]
    assert not [k for k in got if k.lower().startswith("openai-")]
    for name, value in CUSTOM.items():
        assert got[name] == value
    assert _stainless(got) == _stainless(sent)
    assert got["anthropic-version"]  # the template's default, as before
    assert got["x-api-key"] == "sk-ant-fake-test-key" and "authorization" not in got


def test_hop_by_hop_and_connection_named_headers_never_travel(
    gateway: Any, fake_anthropic: FakeAnthropic
) -> None:
    body = {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}  # fmt: skip
    headers = {
        "x-api-key": CLIENT_KEY,
        "anthropic-version": "2023-06-01",
        "connection": "keep-alive, x-hop-only",
        "keep-alive": "timeout=5",
        "x-hop-only": "for-the-gateway",
        "te": "trailers",
        "proxy-authorization": "Basic cHJveHk6c2VjcmV0",
        "x-driftgate-backend": "spoofed",
        "cookie": "session=gateway-origin",
        "x-kept": "yes",
    }
    resp = httpx.post(f"{gateway.url}/v1/messages", json=body, headers=headers, timeout=30)
    assert resp.status_code == 200, resp.text
    got = fake_anthropic.last.headers
    for gone in ("x-hop-only", "keep-alive", "te", "proxy-authorization", "x-driftgate-backend",
                 "cookie", "upgrade"):  # fmt: skip
        assert gone not in got, gone
    assert got["x-kept"] == "yes"
    assert got["host"] == f"127.0.0.1:{fake_anthropic.url.rsplit(':', 1)[1]}"
    assert got["content-length"] == str(len(fake_anthropic.last.body_bytes))
    assert "x-driftgate-dropped" not in resp.headers  # owned, not dropped: nothing to name


@pytest.fixture(params=["responses", "chat", "anthropic"])
def responses_path(
    request: pytest.FixtureRequest, gateway_factory: Callable[..., Any]
) -> Iterator[tuple[str, Any, Any]]:
    kind = request.param
    fake: Any = (
        FakeAnthropic() if kind == "anthropic" else FakeOpenAI(serves_responses=kind == "responses")
    )
    fake.start()
    try:
        yield kind, fake, gateway_factory(backends=[fake])
    finally:
        fake.stop()


def test_responses_paths_follow_the_same_rule(responses_path: tuple[str, Any, Any]) -> None:
    kind, fake, gw = responses_path
    client = openai.OpenAI(
        base_url=gw.url + "/v1", api_key=CLIENT_KEY, max_retries=0, default_headers=CUSTOM
    )
    model = "claude-sonnet-4-6" if kind == "anthropic" else "gpt-4o"
    raw = client.responses.with_raw_response.create(
        model=model,
        input="hello",
        extra_headers={"originator": "codex_cli_rs", "openai-beta": "responses=v1"},
    )
    got = fake.last.headers
    sent = raw.http_response.request.headers
    for name, value in {**CUSTOM, "originator": "codex_cli_rs"}.items():
        assert got[name] == value
    assert _stainless(got) == _stainless(sent)
    assert got["user-agent"] == sent["user-agent"]
    if kind == "anthropic":
        assert "openai-beta" not in got
        assert "header:openai-beta" in _dropped(raw)
    else:  # forwarded to Responses, or bridged to Chat: the same vendor, so the header travels
        assert got["openai-beta"] == "responses=v1"
        assert not [n for n in _dropped(raw) if n.startswith("header:")]


# RFC 9110 5.1 / 5.5: a token name; a value of visible ASCII and obs-text (bytes 0x80-0xFF), with
# spaces and tabs inside but not at the edges. Values are sent as bytes, compared as bytes.
TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VCHAR = "".join(chr(c) for c in (*range(0x21, 0x7F), *range(0x80, 0x100)))
header_name = (
    st.tuples(
        st.sampled_from(["", "x-", "anthropic-", "X-Stainless-"]),
        st.text(TCHAR, min_size=1, max_size=24),
    )
    .map("".join)
    .filter(lambda s: classify(s.lower()) not in (OWNED, CREDENTIAL))
    .filter(lambda s: s.lower() not in ("anthropic-beta", "anthropic-version"))
)
header_value = st.builds(
    lambda head, middle: head + middle.rstrip(" \t") if middle.strip(" \t") else head,
    st.text(VCHAR, min_size=1, max_size=4),
    st.text(VCHAR + " \t", max_size=40),
)
header_sets = st.dictionaries(header_name, header_value, min_size=1, max_size=8).filter(
    lambda d: len({k.lower() for k in d}) == len(d)
)
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@SETTINGS
@given(extra=header_sets, to_openai=st.booleans())
def test_random_headers_never_make_a_gateway_error(
    gateway: Any,
    fake_anthropic: FakeAnthropic,
    fake_openai: FakeOpenAI,
    extra: dict[str, str],
    to_openai: bool,
) -> None:
    body = {"model": "gpt-4o" if to_openai else "claude-sonnet-4-6", "max_tokens": 8,
            "messages": [{"role": "user", "content": "x"}]}  # fmt: skip
    fake = fake_openai if to_openai else fake_anthropic
    before = len(fake.requests)
    headers = [(k.encode(), v.encode("latin-1")) for k, v in extra.items()]
    headers += [(b"x-api-key", CLIENT_KEY.encode()), (b"anthropic-version", b"2023-06-01")]
    resp = httpx.post(f"{gateway.url}/v1/messages", json=body, headers=headers, timeout=30)
    assert len(fake.requests) == before + 1, f"gateway answered itself: {resp.status_code}"
    assert resp.status_code == 200, resp.text[:300]
    got = fake.last.headers
    for name, value in extra.items():
        if to_openai and name.lower().startswith("anthropic-"):
            assert name.lower() not in got
            continue
        # byte-equal: the fakes (aiohttp) decode header bytes as UTF-8 with surrogateescape
        assert got[name].encode("utf-8", "surrogateescape") == value.encode("latin-1"), name
    assert CLIENT_KEY not in resp.headers.get("x-driftgate-dropped", "")
