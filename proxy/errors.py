"""Every error the gateway raises, and the one place each maps to a client's dialect."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

# "responses" is OpenAI's Responses API: its errors have the Chat Completions shape.
Dialect = Literal["anthropic", "openai", "responses"]


class DriftgateError(Exception):
    """Base of every error driftgate raises on purpose."""


class ConfigError(DriftgateError):
    """The configuration file or flags are wrong; the message says what to fix."""


class TemplateError(DriftgateError):
    """A template is missing, not JSON, or does not validate against its schema."""


class GatewayError(DriftgateError):
    """An error answered to a client, carrying its HTTP status and a type in both dialects."""

    status: int = 500
    anthropic_type: str = "api_error"
    openai_type: str = "server_error"
    headers: Mapping[str, str] | None = None  # sent with the error (e.g. x-should-retry)
    openai_code: str | None = None
    param: str | None = None  # OpenAI's `param`: the request field the error is about

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.openai_code = code
        if param is not None:
            self.param = param


class InvalidRequest(GatewayError):
    """The request is malformed or asks for something the target cannot do."""

    status = 400
    anthropic_type = "invalid_request_error"
    openai_type = "invalid_request_error"


class Unroutable(InvalidRequest):
    """No configured backend serves the requested model."""

    status = 404
    anthropic_type = "not_found_error"
    openai_code = "model_not_found"


class NotFound(GatewayError):
    """No such endpoint on the gateway."""

    status = 404
    anthropic_type = "not_found_error"
    openai_type = "invalid_request_error"
    openai_code = "not_found"


class Unauthorized(GatewayError):
    """The client did not present the gateway's own key where one is required."""

    status = 401
    anthropic_type = "authentication_error"
    openai_type = "invalid_request_error"
    openai_code = "invalid_api_key"


class BodyTooLarge(GatewayError):
    """The request body is over the configured limit."""

    status = 413
    anthropic_type = "request_too_large"
    openai_type = "invalid_request_error"


class RequestTimeout(InvalidRequest):
    """The client sent its request head or body too slowly; the connection is closed after it."""

    status = 408
    openai_code = "request_timeout"


class HeadersTooLarge(InvalidRequest):
    """A request line or header is too long, or there are too many headers."""

    status = 431
    anthropic_type = "request_too_large"


class Overloaded(GatewayError):
    """The gateway will not take this request now (connection cap, shutting down): retry later."""

    status = 503
    anthropic_type = "overloaded_error"
    openai_type = "server_error"
    openai_code = "service_unavailable"


class UpstreamUnavailable(GatewayError):
    """Every candidate backend failed to connect, timed out, or is cooling down."""

    status = 502
    anthropic_type = "api_error"
    openai_type = "server_error"


class UpstreamTimeout(UpstreamUnavailable):
    """The upstream did not answer within its timeout."""

    status = 504


# HTTP status -> error type, for mapping an upstream error across dialects.
ANTHROPIC_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
OPENAI_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    529: "server_error",
}


def anthropic_error_body(message: str, error_type: str) -> dict[str, Any]:
    """An Anthropic error JSON body."""
    return {"type": "error", "error": {"type": error_type, "message": message}}


def openai_error_body(
    message: str, error_type: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """An OpenAI error JSON body."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def error_body(exc: GatewayError, dialect: Dialect) -> dict[str, Any]:
    """`exc` as the client's dialect expects it."""
    if dialect == "anthropic":
        return anthropic_error_body(exc.message, exc.anthropic_type)
    return openai_error_body(exc.message, exc.openai_type, exc.openai_code, exc.param)


def type_for_status(status: int, dialect: Dialect) -> str:
    """The dialect's error type for an HTTP status (5xx falls back to the server error)."""
    table = ANTHROPIC_TYPE_BY_STATUS if dialect == "anthropic" else OPENAI_TYPE_BY_STATUS
    if status in table:
        return table[status]
    return table[500] if status >= 500 else table[400]
