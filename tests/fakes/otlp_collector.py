"""A loopback OTLP/HTTP trace collector: decodes ExportTraceServiceRequest protobufs as sent."""

from __future__ import annotations

import queue
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.fakes.server_thread import ServerThread

PROTOBUF = "application/x-protobuf"


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class OtlpCollector:
    """POST /v1/traces, as the OpenTelemetry Collector's otlphttp receiver answers it."""

    def __init__(self) -> None:
        self.spans: queue.Queue[dict[str, Any]] = queue.Queue()
        self.content_types: list[str] = []
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        self.server = ServerThread(app)

    def start(self) -> OtlpCollector:
        """Listen on a free loopback port."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        self.server.stop()

    @property
    def endpoint(self) -> str:
        """The traces URL to configure as `[otel] endpoint`."""
        return self.server.url + "/v1/traces"

    async def _traces(self, request: web.Request) -> web.Response:
        self.content_types.append(request.content_type)
        if request.content_type != PROTOBUF:
            return web.Response(status=415, text="expected application/x-protobuf")
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())  # refuses what is not the message
        for resource_spans in export.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.put(
                        {
                            "name": span.name,
                            "kind": span.kind,
                            "start": span.start_time_unix_nano,
                            "end": span.end_time_unix_nano,
                            "status": span.status.code,
                            "scope": scope_spans.scope.name,
                            "resource": resource,
                            "attributes": {a.key: _value(a.value) for a in span.attributes},
                        }
                    )
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type=PROTOBUF)
