"""OpenTelemetry spans per request (GenAI semantic conventions), exported over OTLP/HTTP.

Imported only when `[otel] endpoint` is set (needs `pip install 'driftgate[otel]'`): with it
unset no OpenTelemetry module is loaded. Spans are made on the recorder's thread from finished
records, with the request's own start and end times, and exported in batches by the SDK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from driftgate.proxy import __version__
from driftgate.proxy.config import BackendConfig
from driftgate.proxy.endpoints import COUNTING
from driftgate.proxy.observe.records import RequestRecord

OPERATION = "chat"  # Messages and Chat Completions are both "chat" in the conventions


class OtelSink:
    """A record sink that turns each record into one CLIENT span and exports it by OTLP."""

    def __init__(self, endpoint: str, service_name: str, backends: Sequence[BackendConfig]) -> None:
        resource = Resource.create({"service.name": service_name, "service.version": __version__})
        # Not the global provider: every gateway (tests start many) keeps its own.
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        self._tracer = self.provider.get_tracer("driftgate", __version__)
        self._servers: Mapping[str, tuple[str, int]] = {
            b.name: _server(b.base_url) for b in backends
        }

    def consume(self, records: Sequence[RequestRecord]) -> None:
        """A record sink: one span per record."""
        for r in records:
            end = int(r.ts * 1e9)
            start = end - int(r.latency_ms * 1e6)
            operation = "count_tokens" if r.endpoint in COUNTING else OPERATION
            span = self._tracer.start_span(
                f"{operation} {r.model_requested or r.model}",
                kind=SpanKind.CLIENT,
                start_time=start,
                attributes=self._attributes(r, operation),
            )
            if r.status >= 400:
                span.set_status(Status(StatusCode.ERROR, f"HTTP {r.status}"))
            span.end(end_time=end)

    def _attributes(self, r: RequestRecord, operation: str) -> dict[str, Any]:
        # The provider whose API the backend speaks (its Chat and Responses APIs are both OpenAI's).
        provider = "anthropic" if r.upstream_dialect == "anthropic" else "openai"
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": provider,
            "gen_ai.system": provider,  # the name before semantic conventions 1.37
            "gen_ai.request.model": r.model_requested or r.model,
            "gen_ai.response.model": r.model,
            # Input tokens include the cached ones, as the conventions count them.
            "gen_ai.usage.input_tokens": r.input_tokens
            + r.cache_read_tokens
            + r.cache_write_tokens,
            "gen_ai.usage.output_tokens": r.output_tokens,
            "http.response.status_code": r.status,
            "driftgate.backend": r.backend,
            "driftgate.client": r.client,
            "driftgate.request_id": r.request_id,
            "driftgate.stream": bool(r.stream),
        }
        if r.cache_read_tokens:
            attrs["gen_ai.usage.cache_read.input_tokens"] = r.cache_read_tokens
        if r.cache_write_tokens:
            attrs["gen_ai.usage.cache_creation.input_tokens"] = r.cache_write_tokens
        if r.reasoning_tokens:
            attrs["gen_ai.usage.reasoning.output_tokens"] = r.reasoning_tokens
        if r.session:
            attrs["gen_ai.conversation.id"] = r.session
        if r.cost_usd is not None:
            attrs["driftgate.cost_usd"] = r.cost_usd
        if r.ttfb_ms is not None:
            attrs["driftgate.ttfb_ms"] = r.ttfb_ms
        if r.status >= 400:
            attrs["error.type"] = str(r.status)
        server = self._servers.get(r.backend)
        if server is not None:
            attrs["server.address"], attrs["server.port"] = server
        return attrs

    def close(self) -> None:
        """Export what is pending and stop the exporter."""
        self.provider.shutdown()


def _server(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.hostname or "", port
