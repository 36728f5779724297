"""OTLP export: each request becomes a span with GenAI attributes at a loopback collector."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import pytest

from driftgate.proxy.config import OtelConfig
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.behaviour import Behaviour
from tests.fakes.otlp_collector import OtlpCollector

SPAN_KIND_CLIENT = 3  # opentelemetry.proto.trace.v1.Span.SpanKind
STATUS_ERROR = 2


@pytest.fixture
def collector() -> Iterator[OtlpCollector]:
    c = OtlpCollector().start()
    try:
        yield c
    finally:
        c.stop()


def test_spans_carry_the_genai_attributes(
    gateway_factory: Callable[..., Any], fake_anthropic: FakeAnthropic, collector: OtlpCollector
) -> None:
    gw = gateway_factory(
        backends=[fake_anthropic],
        otel=OtelConfig(endpoint=collector.endpoint, service_name="gw-under-test"),
    )
    client = anthropic.Anthropic(base_url=gw.url, api_key="sk-client-a", max_retries=0)
    reply = client.messages.create(
        model="sonnet",
        max_tokens=20,
        messages=[{"role": "user", "content": "a private prompt"}],
        extra_headers={"x-claude-code-session-id": "sess-otel"},
    )
    fake_anthropic.script(Behaviour.status(400))
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(
            model="sonnet", max_tokens=20, messages=[{"role": "user", "content": "x"}]
        )
    gw.stop()  # shutting down exports what is pending
    ok = collector.spans.get(timeout=10)
    failed = collector.spans.get(timeout=10)
    assert collector.content_types[0] == "application/x-protobuf"

    assert ok["name"] == "chat sonnet" and ok["kind"] == SPAN_KIND_CLIENT
    assert ok["scope"] == "driftgate"
    assert ok["resource"]["service.name"] == "gw-under-test"
    a = ok["attributes"]
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "anthropic" and a["gen_ai.system"] == "anthropic"
    assert a["gen_ai.request.model"] == "sonnet"
    assert a["gen_ai.response.model"] == "claude-sonnet-4-6"
    usage = reply.usage
    cached = (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0)
    assert a["gen_ai.usage.input_tokens"] == usage.input_tokens + cached
    assert a["gen_ai.usage.output_tokens"] == usage.output_tokens
    assert a["gen_ai.conversation.id"] == "sess-otel"
    assert a["server.address"] == "127.0.0.1" and a["http.response.status_code"] == 200
    assert ok["end"] > ok["start"] > 0
    assert "private prompt" not in str(ok) and "sk-client-a" not in str(ok)

    assert failed["status"] == STATUS_ERROR and failed["attributes"]["error.type"] == "400"


def test_without_an_endpoint_opentelemetry_is_never_imported(tmp_path: Any) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from driftgate.proxy.config import Config\n"
        "from driftgate.proxy.server import GatewayServer\n"
        f"home = Path({str(tmp_path)!r})\n"
        "with GatewayServer(Config(home=home, path=home / 'c.toml', port=0), env={}):\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
