"""Read and check a client request: body size, JSON, model; then the Flow that carries it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from driftgate.proxy.config import Config
from driftgate.proxy.endpoints import Endpoint
from driftgate.proxy.errors import (
    InvalidRequest,
)
from driftgate.proxy.flow import Flow
from driftgate.proxy.serve.request import Request

_JSON_KINDS = {
    str: "a string",
    int: "a number",
    float: "a number",
    list: "an array",
    dict: "an object",
}


def parse_body(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or InvalidRequest saying what is wrong."""
    if not raw:
        raise InvalidRequest("request body is empty; expected a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        kind = _JSON_KINDS.get(type(body), "another JSON value")
        raise InvalidRequest(f"request body must be a JSON object, not {kind}")
    return body


def wants_stream(value: Any) -> bool:
    """The request's `stream`, decided here once: true, false or absent; anything else is a 400.

    A string "true" or a 1 would have the upstream stream while the gateway waited for JSON.
    """
    if value is None or value is False:
        return False
    if value is True:
        return True
    kind = _JSON_KINDS.get(type(value), "another JSON value")
    raise InvalidRequest(f"`stream` must be true or false (a JSON boolean), got {kind}")


async def intake(
    request: Request,
    endpoint: Endpoint,
    limits: Config,
    clock: Callable[[], float],
) -> Flow:
    """Read, parse and check the request into a Flow (`limits`: max_body_bytes, body_timeout)."""
    started = clock()
    raw = request.read_now(limits.max_body_bytes)
    if raw is None:  # the body is still on its way
        raw = await request.read(limits.max_body_bytes, limits.body_timeout)
    return flow_of(request, endpoint, raw, started)


def flow_of(request: Request, endpoint: Endpoint, raw: bytes, started: float) -> Flow:
    """Parse and check a request whose body `raw` has been read into a Flow."""
    body = parse_body(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("`model` is required and must be a non-empty string")
    counting = endpoint.counts
    stream = not counting and wants_stream(body.get("stream"))
    include_usage = False
    if stream and endpoint.dialect == "openai":
        opts = body.get("stream_options")
        include_usage = isinstance(opts, dict) and opts.get("include_usage") is True
    headers = request.headers
    session = headers.get("x-claude-code-session-id") or headers.get("x-session-id")
    return Flow(
        endpoint.name,
        endpoint.dialect,
        raw,
        body,
        model,
        stream,
        include_usage,
        headers,
        request.raw_query,  # as sent: still percent-encoded
        started,
        session,
        counting,
    )
