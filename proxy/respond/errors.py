"""A gateway error as a response in the client's dialect (the one place errors become JSON)."""

from __future__ import annotations

import orjson

from driftgate.proxy.errors import Dialect, GatewayError, error_body
from driftgate.proxy.respond.headers import JSON_CT
from driftgate.proxy.serve.response import Response


def error_response(
    exc: GatewayError, dialect: Dialect, headers: dict[str, str] | None = None
) -> Response:
    """`exc` as a JSON error response in the client's dialect."""
    return Response(
        status=exc.status,
        body=orjson.dumps(error_body(exc, dialect)),
        content_type=JSON_CT,
        headers={**exc.headers, **(headers or {})} if exc.headers else headers,
    )
