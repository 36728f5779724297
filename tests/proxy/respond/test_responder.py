"""The respond step: the answer a client gets is decided by the route that answered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from driftgate.proxy.config import BackendConfig
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.scripted import Behaviour
from tests.fakes.server_thread import closed_port

SONNET = "claude-sonnet-4-6"
BODY = {"model": SONNET, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
Factory = Callable[..., Any]


def test_an_earlier_routes_error_is_relayed_as_that_route_speaks(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    # The Anthropic route answers 529 (retryable); the OpenAI fallback is unreachable, so the
    # client gets the first route's own error. It must be relayed unchanged, as a same-dialect
    # answer, not translated as if the last route tried (OpenAI) had answered.
    dead = BackendConfig(
        name="dead",
        kind="openai",
        base_url=f"http://127.0.0.1:{closed_port()}/v1",
        key="k",
        models=("never-*",),
    )
    gw = gateway_factory(
        backends=[fake_anthropic.backend("primary"), dead],
        fallbacks={SONNET: ("dead:gpt-4o-mini",)},
    )
    body = (
        b'{"type":"error","error":{"type":"overloaded_error","message":"busy"},"request_id":"r1"}'
    )
    fake_anthropic.script(Behaviour.status(529, body=body))
    r = httpx.post(gw.url + "/v1/messages", json=BODY)
    assert r.status_code == 529
    assert r.content == body
    assert r.headers["x-driftgate-backend"] == "primary"
