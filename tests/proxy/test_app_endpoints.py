"""The gateway's endpoints through real clients, against fake upstreams on loopback."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from driftgate.proxy.analytics import Recorder
from driftgate.proxy.config import Config
from driftgate.proxy.server import GatewayServer
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI

SONNET = "claude-sonnet-4-6"
Factory = Callable[..., Any]


def ant_client(gw: Any, key: str = "client-own-key") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)


def oai_client(gw: Any, key: str = "client-own-key") -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def test_messages_non_streaming_through_the_sdk(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    raw = ant_client(gw).messages.with_raw_response.create(
        model=SONNET, max_tokens=64, messages=[{"role": "user", "content": "hello there"}]
    )
    msg = raw.parse()
    assert msg.content[0].type == "text" and msg.content[0].text == "echo: hello there"
    assert raw.headers["x-driftgate-backend"] == "anthropic"
    assert raw.headers["request-id"].startswith("req_")  # upstream request id passed on
    seen = fake_anthropic.last
    assert (
        seen.headers["x-api-key"] == "sk-ant-fake-test-key"
    )  # the backend's key, not the client's
    assert "client-own-key" not in str(dict(seen.headers))


def test_default_anthropic_version_when_the_client_sends_none(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    body = {"model": SONNET, "max_tokens": 8, "messages": [{"role": "user", "content": "v"}]}
    r = httpx.post(gw.url + "/v1/messages", json=body)
    assert r.status_code == 200, r.text
    assert (
        fake_anthropic.last.headers["anthropic-version"] == "2023-06-01"
    )  # the template's api.version


def test_messages_streaming_through_the_sdk(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    with ant_client(gw).messages.stream(
        model=SONNET, max_tokens=64, messages=[{"role": "user", "content": "stream me please"}]
    ) as stream:
        text = stream.get_final_text()
        final = stream.get_final_message()
    assert text == "echo: stream me please"
    assert final.usage.output_tokens > 0
    assert fake_anthropic.last.json["stream"] is True


def test_chat_completions_non_streaming_and_streaming(
    gateway_factory: Factory, fake_openai: FakeOpenAI
) -> None:
    gw = gateway_factory(backends=[fake_openai])
    client = oai_client(gw)
    done = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    assert done.choices[0].message.content == "echo: hi"
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "count with usage"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: count with usage"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert fake_openai.last.headers["authorization"] == "Bearer sk-openai-fake-test-key"


def test_query_string_unknown_fields_and_betas_forwarded_intact(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    body = (
        b'{"model":"claude-sonnet-4-6","max_tokens":32,"future_field":{"nested":[1,2]},'
        b'"messages":[{"role":"user","content":"hi"}],  "context_management":{"edits":[]}}'
    )
    betas = "context-1m-2025-08-07,some-brand-new-beta-2030-01-01"
    r = httpx.post(
        gw.url + "/v1/messages?beta=true",
        content=body,
        headers={
            "content-type": "application/json",
            "anthropic-version": "2023-06-01",
            "anthropic-beta": betas,
            "anthropic-some-future-header": "yes",
            "x-api-key": "client",
        },
    )
    assert r.status_code == 200, r.text
    seen = fake_anthropic.last
    assert seen.query == {"beta": "true"}
    assert seen.body_bytes == body  # byte for byte: nothing changed, nothing re-serialised
    assert seen.headers["anthropic-beta"] == betas
    assert seen.headers["anthropic-some-future-header"] == "yes"


def test_alias_rewrites_the_model_and_keeps_unknown_fields(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    body = {
        "model": "sonnet",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "x"}],
        "zz_new": [1],
    }
    r = httpx.post(gw.url + "/v1/messages", json=body, headers={"x-api-key": "c"})
    assert r.status_code == 200, r.text
    sent = fake_anthropic.last.json
    assert sent["model"] == SONNET
    assert sent["zz_new"] == [1]


def test_upstream_error_reaches_a_same_dialect_client_unchanged(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    upstream_body = (
        b'{"type":"error","error":{"type":"invalid_request_error","message":"exact wording 42"}}'
    )
    from tests.fakes.scripted import Behaviour

    fake_anthropic.script(
        Behaviour.status(400, body=upstream_body, headers={"content-type": "application/json"})
    )
    r = httpx.post(gw.url + "/v1/messages", json={"model": SONNET, "max_tokens": 5, "messages": []})
    assert r.status_code == 400
    assert r.content == upstream_body


def test_count_tokens_forwarded_to_anthropic(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    raw = ant_client(gw).messages.with_raw_response.count_tokens(
        model=SONNET, messages=[{"role": "user", "content": "how many tokens is this"}]
    )
    assert raw.parse().input_tokens > 0
    assert "x-driftgate-token-estimate" not in raw.headers
    assert fake_anthropic.last.path == "/v1/messages/count_tokens"


def test_count_tokens_estimated_for_openai_backends(
    gateway_factory: Factory, fake_openai: FakeOpenAI
) -> None:
    gw = gateway_factory(backends=[fake_openai])
    text = "a" * 400
    raw = ant_client(gw).messages.with_raw_response.count_tokens(
        model="gpt-4o", system="s" * 40, messages=[{"role": "user", "content": text}]
    )
    assert raw.headers["x-driftgate-token-estimate"] == "true"
    assert raw.parse().input_tokens == 110  # (40 + 400) chars / 4
    assert fake_openai.requests == []


def test_models_in_both_shapes(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> None:
    gw = gateway_factory(backends=[fake_anthropic, fake_openai])
    ant_ids = [m.id for m in ant_client(gw).models.list()]
    assert SONNET in ant_ids
    oai_models = list(oai_client(gw).models.list())
    by_id = {m.id: m for m in oai_models}
    assert by_id["gpt-4o"].owned_by == "openai"
    assert by_id[SONNET].owned_by == "anthropic"
    raw = httpx.get(gw.url + "/v1/models", headers={"anthropic-version": "2023-06-01"}).json()
    assert raw["has_more"] is False and raw["first_id"] == raw["data"][0]["id"]
    assert raw["data"][0]["type"] == "model"


def test_health_with_no_backends_says_how_to_add_one(gateway_factory: Factory) -> None:
    gw = gateway_factory(backends=[])
    doc = httpx.get(gw.url + "/health").json()
    assert doc["status"] == "no_backends"
    assert "driftgate backend add" in doc["message"]
    names = {t["name"]: t for t in doc["templates"]}
    assert names["anthropic"]["hash"].startswith("sha256:")
    assert doc["template_errors"] == []


def test_health_redacts_backend_keys(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    r = httpx.get(gw.url + "/health")
    assert "sk-ant-fake-test-key" not in r.text
    backend = r.json()["backends"][0]
    assert backend["name"] == "anthropic" and backend["state"] == "ok"


def test_health_and_the_log_flag_a_backend_whose_key_variable_is_unset(
    gateway_factory: Factory, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="driftgate.app")
    keyless = fake_openai.backend("fo", key=None, key_env="FO_KEY_NOT_SET")
    gw = gateway_factory(backends=[keyless], app_kwargs={"env": {"OTHER": "x"}})
    backend = httpx.get(gw.url + "/health").json()["backends"][0]
    assert backend["state"] == "no_key" and "$FO_KEY_NOT_SET" in backend["message"]
    assert "$FO_KEY_NOT_SET is not set" in caplog.text
    fine = gateway_factory(backends=[keyless], app_kwargs={"env": {"FO_KEY_NOT_SET": "k"}})
    assert httpx.get(fine.url + "/health").json()["backends"][0]["state"] == "ok"


@pytest.mark.parametrize(
    ("path", "content", "shape"),
    [
        ("/v1/messages", b"{not json", "anthropic"),
        ("/v1/messages", b"[1, 2]", "anthropic"),
        ("/v1/chat/completions", b'{"messages": []}', "openai"),
        ("/v1/chat/completions", b"", "openai"),
    ],
)
def test_bad_requests_are_400_in_the_dialect(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, path: str, content: bytes, shape: str
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    r = httpx.post(gw.url + path, content=content, headers={"content-type": "application/json"})
    assert r.status_code == 400
    doc = r.json()
    if shape == "anthropic":
        assert doc["type"] == "error" and doc["error"]["type"] == "invalid_request_error"
    else:
        assert doc["error"]["type"] == "invalid_request_error" and doc["error"]["message"]
    assert "Traceback" not in r.text
    assert fake_anthropic.requests == []


def test_body_over_the_limit_is_413_by_length_and_while_reading(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic], max_body_bytes=2048)
    big = b'{"model":"claude-sonnet-4-6","pad":"' + b"x" * 4096 + b'"}'
    r = httpx.post(gw.url + "/v1/messages", content=big)
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "request_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        for i in range(0, len(big), 512):
            yield big[i : i + 512]

    r = httpx.post(gw.url + "/v1/chat/completions", content=chunks())
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert fake_anthropic.requests == []


def test_unroutable_model_lists_what_is_routable(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    with pytest.raises(openai.NotFoundError) as info:
        oai_client(gw).chat.completions.create(
            model="mystery-model", messages=[{"role": "user", "content": "x"}]
        )
    assert "anthropic" in str(info.value)


def test_unknown_endpoint_is_a_404_not_found_in_the_dialect(gateway_factory: Factory) -> None:
    # forward_other_endpoints = false: other /v1/ endpoints too (tests/e2e/test_other_endpoints.py)
    gw = gateway_factory(backends=[], forward_other_endpoints=False)
    r = httpx.get(gw.url + "/v2/nothing")
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "message": "no such endpoint: GET /v2/nothing",
            "type": "invalid_request_error",
            "param": None,
            "code": "not_found",
        }
    }
    with pytest.raises(openai.NotFoundError) as oai:
        oai_client(gw).batches.list()
    assert oai.value.code == "not_found"
    with pytest.raises(anthropic.NotFoundError) as ant:
        ant_client(gw).models.retrieve("claude-sonnet-4-6")
    assert ant.value.body == {
        "type": "error",
        "error": {
            "type": "not_found_error",
            "message": "no such endpoint: GET /v1/models/claude-sonnet-4-6 (this gateway does "
            "not forward the endpoints it does not serve itself: [gateway] "
            "forward_other_endpoints = false)",
        },
    }


def test_usage_recorded_after_each_request(
    tmp_path: Path, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> None:
    recorder = Recorder(tmp_path / "usage.sqlite3")
    config = Config(
        home=tmp_path,
        path=tmp_path / "c.toml",
        port=0,
        backends=(fake_anthropic.backend(), fake_openai.backend()),
    )
    with GatewayServer(config, recorder=recorder) as gw:
        client = ant_client(gw)
        client.messages.create(
            model=SONNET,
            max_tokens=20,
            messages=[{"role": "user", "content": "a b c"}],
            extra_headers={"x-claude-code-session-id": "sess-1"},
        )
        client.messages.count_tokens(
            model="gpt-4o", messages=[{"role": "user", "content": "abcd" * 10}]
        )
    rows = {r["backend"]: r for r in recorder.summary()}
    recorder.close()
    assert rows["anthropic"]["requests"] == 1
    assert rows["anthropic"]["output_tokens"] > 0
    assert rows["openai"]["requests"] == 0 and rows["openai"]["count_tokens"] == 1
    assert rows["openai"]["output_tokens"] == 0


def test_raw_body_is_json_object_error_shape(
    gateway_factory: Factory, fake_openai: FakeOpenAI
) -> None:
    gw = gateway_factory(backends=[fake_openai])
    r = httpx.post(gw.url + "/v1/chat/completions", content=orjson.dumps({"model": 5}))
    assert r.status_code == 400
    assert "model" in r.json()["error"]["message"]


def test_across_dialects_with_dropped_header(
    gateway_factory: Factory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_openai, fake_anthropic])
    raw = ant_client(gw).messages.with_raw_response.create(
        model="gpt-4o",
        max_tokens=64,
        messages=[{"role": "user", "content": "think"}],
        extra_body={"top_k": 5},
    )
    assert raw.parse().content[0].text == "echo: think"
    assert "top_k" in raw.headers["x-driftgate-dropped"]
    assert "x-api-key" not in fake_openai.last.headers
    with oai_client(gw).chat.completions.create(
        model=SONNET, messages=[{"role": "user", "content": "over there"}], stream=True
    ) as stream:
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "echo: over there"
    assert fake_anthropic.last.headers["x-api-key"] == "sk-ant-fake-test-key"


def test_one_log_line_per_request_and_no_keys_in_it(
    tmp_path: Path, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="driftgate.requests")
    config = Config(
        home=tmp_path, path=tmp_path / "c.toml", port=0, backends=(fake_anthropic.backend(),)
    )
    with GatewayServer(config) as gw:
        for _ in range(2):
            ant_client(gw, key="sk-client-secret-99").messages.create(
                model="sonnet", max_tokens=8, messages=[{"role": "user", "content": "x"}]
            )
    lines = [r.getMessage() for r in caplog.records if r.name == "driftgate.requests"]
    assert len(lines) == 2  # two records, one line each
    assert lines[0].startswith(f"messages sonnet -> anthropic ({SONNET}) 200")
    assert "sk-client-secret-99" not in caplog.text  # "sk-" alone matches "Task-581"
