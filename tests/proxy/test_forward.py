"""The fallback loop: order, cooldowns, Retry-After, and what the client gets when all fail."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from driftgate.proxy.auth import GatewayKey
from driftgate.proxy.config import BackendConfig
from driftgate.proxy.cooldown import Cooldowns
from driftgate.proxy.forward import Forwarder
from driftgate.proxy.routing import Route
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.scripted import Behaviour
from tests.fakes.server_thread import closed_port

SONNET = "claude-sonnet-4-6"
BODY = {"model": SONNET, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
Factory = Callable[..., Any]


@pytest.fixture
def second() -> Iterator[FakeAnthropic]:
    """Another fake Anthropic upstream, for the fallback route."""
    fake = FakeAnthropic().start()
    yield fake
    fake.stop()


def two_backends(primary: FakeAnthropic, second: FakeAnthropic) -> dict[str, Any]:
    return {
        "backends": [primary.backend("primary"), second.backend("second", models=["never-*"])],
        "fallbacks": {SONNET: (f"second:{SONNET}",)},
    }


def test_500_falls_back_and_the_failed_backend_cools(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, second: FakeAnthropic
) -> None:
    gw = gateway_factory(**two_backends(fake_anthropic, second))
    fake_anthropic.script(Behaviour.status(500))
    r = httpx.post(gw.url + "/v1/messages", json=BODY)
    assert r.status_code == 200
    assert r.headers["x-driftgate-backend"] == "second"
    r = httpx.post(gw.url + "/v1/messages", json=BODY)  # primary is cooling: not even tried
    assert r.headers["x-driftgate-backend"] == "second"
    assert len(fake_anthropic.requests) == 1 and len(second.requests) == 2
    health = {b["name"]: b for b in httpx.get(gw.url + "/health").json()["backends"]}
    assert health["primary"]["state"] == "cooling"


def test_429_retry_after_cools_for_that_long_then_falls_back(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, second: FakeAnthropic
) -> None:
    gw = gateway_factory(**two_backends(fake_anthropic, second), cooldown_seconds=1.0)
    fake_anthropic.script(Behaviour.status(429, headers={"retry-after": "120"}))
    r = httpx.post(gw.url + "/v1/messages", json=BODY)
    assert r.status_code == 200 and r.headers["x-driftgate-backend"] == "second"
    health = {b["name"]: b for b in httpx.get(gw.url + "/health").json()["backends"]}
    assert health["primary"]["cooldown_seconds"] > 60  # Retry-After, not the 1 s default


def test_short_retry_after_on_the_last_route_waits_and_retries_once(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    fake_anthropic.script(Behaviour.status(429, headers={"retry-after": "0"}))
    r = httpx.post(gw.url + "/v1/messages", json=BODY)
    assert r.status_code == 200
    assert len(fake_anthropic.requests) == 2


def test_retried_once_only(gateway_factory: Factory, fake_anthropic: FakeAnthropic) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    busy = Behaviour.status(429, headers={"retry-after": "0"})
    fake_anthropic.script(busy, busy, busy)
    r = httpx.post(gw.url + "/v1/messages", json=BODY)
    assert r.status_code == 429
    assert r.json()["error"]["type"] == "rate_limit_error"  # the upstream's own error body
    assert len(fake_anthropic.requests) == 2


def test_all_routes_fail_returns_the_last_upstream_error(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, second: FakeAnthropic
) -> None:
    gw = gateway_factory(**two_backends(fake_anthropic, second))
    fake_anthropic.script(Behaviour.status(500))
    last_body = (
        b'{"type":"error","error":{"type":"overloaded_error","message":"second is overloaded"}}'
    )
    second.script(Behaviour.status(529, body=last_body))
    r = httpx.post(gw.url + "/v1/messages", json=BODY)
    assert r.status_code == 529
    assert r.content == last_body


def test_connect_error_falls_back(gateway_factory: Factory, fake_anthropic: FakeAnthropic) -> None:
    dead = BackendConfig(
        name="dead", kind="anthropic", base_url=f"http://127.0.0.1:{closed_port()}", key="k"
    )
    gw = gateway_factory(
        backends=[dead, fake_anthropic.backend("alive", models=["never-*"])],
        fallbacks={SONNET: (f"alive:{SONNET}",)},
    )
    r = httpx.post(gw.url + "/v1/messages", json=BODY)
    assert r.status_code == 200 and r.headers["x-driftgate-backend"] == "alive"


def test_connect_error_with_no_fallback_is_502_in_the_dialect(gateway_factory: Factory) -> None:
    dead = BackendConfig(
        name="dead", kind="openai", base_url=f"http://127.0.0.1:{closed_port()}/v1", key="k"
    )
    gw = gateway_factory(backends=[dead])
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "gpt-4o", "messages": []})
    assert r.status_code == 502
    err = r.json()["error"]
    assert err["type"] == "server_error" and "dead" in err["message"]
    assert "cannot connect to 127.0.0.1:" in err["message"]  # the reason, not a class name


def test_a_non_retryable_4xx_does_not_fall_back(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, second: FakeAnthropic
) -> None:
    gw = gateway_factory(**two_backends(fake_anthropic, second))
    fake_anthropic.script(Behaviour.status(400))
    r = httpx.post(gw.url + "/v1/messages", json=BODY)
    assert r.status_code == 400 and second.requests == []


def test_candidates_skip_cooling_but_never_leave_none(tmp_path: Path) -> None:
    now = [0.0]
    cd = Cooldowns(30.0, clock=lambda: now[0])
    a = BackendConfig(name="a", kind="anthropic", base_url="http://a")
    b = BackendConfig(name="b", kind="anthropic", base_url="http://b")
    routes = [Route(a, SONNET, SONNET), Route(b, SONNET, SONNET)]
    fw = Forwarder(lambda: None, {}, cd, GatewayKey(None), clock=lambda: now[0])  # type: ignore[arg-type,return-value]
    cd.fail("a")
    assert [r.backend.name for r in fw.candidates(routes)] == ["b"]
    cd.fail("b", 100.0)
    assert [r.backend.name for r in fw.candidates(routes)] == ["a"]  # frees soonest
    now[0] = 31.0
    assert [r.backend.name for r in fw.candidates(routes)] == ["a"]


def test_upstream_error_is_translated_across_dialects(
    gateway_factory: Factory, fake_openai: FakeOpenAI
) -> None:
    gw = gateway_factory(backends=[fake_openai])
    fake_openai.script(
        Behaviour.status(
            400,
            body={
                "error": {
                    "message": "exact upstream wording",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            },
        )
    )
    client = anthropic.Anthropic(base_url=gw.url, api_key="c", max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(
            model="gpt-4o", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert "exact upstream wording" in str(info.value)
    assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


def test_a_fallback_that_cannot_take_the_request_is_skipped(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, second: FakeAnthropic
) -> None:
    gw = gateway_factory(
        backends=[fake_anthropic.backend("primary"), second.backend("second", models=["x-*"])],
        fallbacks={SONNET: ("second:claude-sonnet-4-5", "second:claude-opus-4-6")},
    )
    fake_anthropic.script(Behaviour.status(500))
    adaptive = {**BODY, "max_tokens": 2000, "thinking": {"type": "adaptive"}}
    r = httpx.post(gw.url + "/v1/messages", json=adaptive)
    # claude-sonnet-4-5 rejects adaptive thinking (its template says so): skipped, not a 400
    assert r.status_code == 200 and r.headers["x-driftgate-backend"] == "second"
    assert [q.json["model"] for q in second.requests] == ["claude-opus-4-6"]
