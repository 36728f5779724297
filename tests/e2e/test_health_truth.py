"""/health tells the truth: recent upstream error rates, and ?probe=1 asks every backend."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import pytest

from driftgate.proxy.config import BackendConfig
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.behaviour import Behaviour
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server_thread import closed_port

Factory = Callable[..., Any]


def _health(url: str, probe: bool = False) -> dict[str, Any]:
    r = httpx.get(url + "/health" + ("?probe=1" if probe else ""), timeout=30)
    assert r.status_code == 200
    doc: dict[str, Any] = r.json()
    return doc


def test_probe_reports_each_backends_state(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> None:
    fake_anthropic.api_key = "sk-ant-the-right-key"  # the backend below sends another key
    gone = closed_port()
    gw = gateway_factory(
        backends=[
            fake_anthropic.backend("refused", key="sk-ant-a-wrong-key"),
            fake_openai.backend("fine"),
            BackendConfig("down", "openai", f"http://127.0.0.1:{gone}/v1", key="sk-x-down-1234"),
            fake_anthropic.backend("theirs", auth="passthrough", key=None),
        ]
    )
    plain = _health(gw.url)
    assert plain["status"] == "ok"  # plain /health sends nothing upstream
    assert not fake_anthropic.requests_to("/v1/models")

    doc = _health(gw.url, probe=True)
    states = {b["name"]: b["probe"] for b in doc["backends"]}
    assert states["refused"]["state"] == "auth_failed" and states["refused"]["status"] == 401
    assert states["fine"]["state"] == "ok" and states["fine"]["latency_ms"] >= 0
    assert states["down"]["state"] == "unreachable"
    assert f"127.0.0.1:{gone}" in states["down"]["message"]
    assert states["theirs"]["state"] == "skipped"
    assert doc["status"] == "degraded"
    assert "refused: probe auth_failed" in doc["problems"]
    assert "sk-ant-a-wrong-key" not in str(doc)
    # the probe was a real request with the backend's key
    assert fake_anthropic.requests_to("/v1/models")[0].headers["x-api-key"] == "sk-ant-a-wrong-key"


def test_an_upstream_error_status_is_an_error_state(
    gateway_factory: Factory, fake_openai: FakeOpenAI
) -> None:
    gw = gateway_factory(backends=[fake_openai])
    fake_openai.script(Behaviour.status(503), path="/v1/models")
    [probe] = [b["probe"] for b in _health(gw.url, probe=True)["backends"]]
    assert probe["state"] == "error" and probe["status"] == 503


def test_probes_are_cached_and_concurrent_probes_share_one_round(
    gateway_factory: Factory, fake_openai: FakeOpenAI
) -> None:
    gw = gateway_factory(backends=[fake_openai])
    fake_openai.script(Behaviour.stall(0.5), path="/v1/models")  # the round is still running...
    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # ...when these arrive
        docs = list(pool.map(lambda _: _health(gw.url, probe=True), range(4)))
    assert all(d["backends"][0]["probe"]["state"] == "ok" for d in docs)
    assert len(fake_openai.requests_to("/v1/models")) == 1
    _health(gw.url, probe=True)  # within the cache's 30 s
    assert len(fake_openai.requests_to("/v1/models")) == 1


def test_plain_health_is_degraded_when_recent_requests_fail(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    client = anthropic.Anthropic(base_url=gw.url, api_key="sk-client-a", max_retries=0)
    client.messages.create(
        model="claude-sonnet-4-6", max_tokens=5, messages=[{"role": "user", "content": "x"}]
    )
    assert _health(gw.url)["status"] == "ok"
    for _ in range(6):
        fake_anthropic.script(Behaviour.status(504))
        with pytest.raises(anthropic.APIStatusError):
            client.messages.create(
                model="claude-sonnet-4-6", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
    doc = _health(gw.url)
    [backend] = doc["backends"]
    assert backend["recent"] == {"attempts": 7, "errors": 6, "error_rate": round(6 / 7, 3)}
    assert doc["status"] == "degraded"
    assert doc["problems"] == ["anthropic: 86% of recent upstream requests failed"]
