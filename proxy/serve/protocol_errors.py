"""Requests too malformed for a handler: told in the client's dialect (guessed from the request
line), never echoing what it sent."""

from __future__ import annotations

from http import HTTPStatus

import orjson

from driftgate.proxy.errors import Dialect, GatewayError, error_body

# Where a request line's target starts tells the dialect: enough bytes for any method name.
_TARGETS: tuple[tuple[bytes, Dialect], ...] = (
    (b"/v1/messages", "anthropic"),
    (b"/v1/chat/completions", "openai"),
    (b"/v1/responses", "responses"),
)
_LINE_SCAN = 4096


def dialect_of_head(head: bytes) -> Dialect | None:
    """The dialect a raw request head's path implies (/v1/messages, /v1/chat/completions, ...)."""
    start = head.find(b" ", 0, 32)
    if start < 0:
        return None
    end = head.find(b" ", start + 1, _LINE_SCAN)
    target = head[start + 1 : end if end >= 0 else _LINE_SCAN]
    for prefix, dialect in _TARGETS:
        if target.startswith(prefix):
            return dialect
    return None


def json_error(exc: GatewayError, dialect: Dialect | None) -> bytes:
    """The error's JSON body: in `dialect`, else the OpenAI shape (a plain {"error": {...}})."""
    return orjson.dumps(error_body(exc, dialect or "openai"))


def wire_error(exc: GatewayError, dialect: Dialect | None, retry_after: int | None = None) -> bytes:
    """A whole HTTP/1.1 error response that closes the connection, for where no handler runs."""
    body = json_error(exc, dialect)
    retry = f"Retry-After: {retry_after}\r\n" if retry_after is not None else ""
    head = (
        f"HTTP/1.1 {exc.status} {HTTPStatus(exc.status).phrase}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"{retry}Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body
