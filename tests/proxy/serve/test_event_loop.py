"""The event loop: uvloop by default (installed with driftgate), asyncio's when configured; the
gateway answers the same on both, and /health says which one runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import pytest

from driftgate.proxy.errors import ConfigError
from driftgate.proxy.serve.event_loop import loop_factory
from tests.fakes.anthropic_upstream import FakeAnthropic

Factory = Callable[..., Any]


@pytest.mark.parametrize(("choice", "runs"), [("auto", "uvloop"), ("uvloop", "uvloop"),
                                              ("asyncio", "asyncio")])  # fmt: skip
def test_each_event_loop_serves_a_stream_and_health_names_it(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, choice: str, runs: str
) -> None:
    gw = gateway_factory(backends=[fake_anthropic], event_loop=choice)
    assert httpx.get(f"{gw.url}/health").json()["event_loop"] == runs
    client = anthropic.Anthropic(base_url=gw.url, api_key="sk-client", max_retries=0)
    with client.messages.stream(
        model="claude-sonnet-4-6", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
    assert text and stream.get_final_message().usage.output_tokens > 0


def test_asking_for_uvloop_where_it_cannot_be_imported_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvloop", None)  # what an absent package looks like
    with pytest.raises(ConfigError, match='pip install uvloop, or set event_loop = "asyncio"'):
        loop_factory("uvloop")
    assert loop_factory("auto")().__class__.__module__.startswith("asyncio")
