"""One adapter per dialect, in one registry: a new dialect is one more entry, not more translators."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from driftgate.proxy.errors import Dialect, InvalidRequest, anthropic_error_body, openai_error_body
from driftgate.proxy.sse import Usage, anthropic_usage, openai_usage, responses_usage
from driftgate.proxy.translate import (
    anthropic_render,
    anthropic_request,
    anthropic_response,
    openai_render,
    openai_request,
    openai_response,
    responses_request,
    responses_response,
)
from driftgate.proxy.translate.anthropic_stream import AnthropicDecoder, AnthropicEncoder
from driftgate.proxy.translate.ir import ChatRequest, ChatResponse
from driftgate.proxy.translate.openai_stream import OpenAIDecoder, OpenAIEncoder
from driftgate.proxy.translate.responses_stream import ResponsesDecoder, ResponsesEncoder
from driftgate.proxy.translate.stream_events import StreamDecoder, StreamEncoder


@dataclass(frozen=True)
class Adapter:
    """Everything the translator needs to know about one dialect."""

    parse_request: Callable[[dict[str, Any]], ChatRequest]
    render_request: Callable[[ChatRequest, str], tuple[dict[str, Any], list[str]]]
    parse_response: Callable[[dict[str, Any]], ChatResponse]
    # (response, client model, the client's request body) -> body, what it left out
    render_response: Callable[
        [ChatResponse, str, dict[str, Any] | None], tuple[dict[str, Any], list[str]]
    ]
    decoder: Callable[[], StreamDecoder]
    # (client model, shared running usage, include_usage, clock, the client's request) -> encoder
    encoder: Callable[[str, Usage, bool, Callable[[], float], dict[str, Any] | None], StreamEncoder]
    usage: Callable[[Any], Usage]  # from a response's `usage` object
    error_body: Callable[[str, str], dict[str, Any]]  # (message, error type) -> error JSON
    # Whether system messages may sit mid-conversation, for a model the templates say nothing of.
    # Anthropic models before the 5 generation refuse them, so they are hoisted unless a model's
    # template capability `mid_conversation_system` is true.
    mid_conversation_system: bool = True


def _anthropic_encoder(
    model: str,
    usage: Usage,
    include_usage: bool,
    clock: Callable[[], float],
    request: dict[str, Any] | None = None,
) -> StreamEncoder:
    return AnthropicEncoder(model, usage)


def _no_request_render(
    req: ChatRequest, model: str
) -> tuple[dict[str, Any], list[str]]:  # pragma: no cover - routing never targets it
    raise InvalidRequest(
        "a Responses API backend only takes /v1/responses requests; this request is sent to "
        "its Chat Completions endpoint instead"
    )


ADAPTERS: dict[str, Adapter] = {
    "anthropic": Adapter(
        parse_request=anthropic_request.parse_request,
        render_request=anthropic_render.render_request,
        parse_response=anthropic_response.parse_response,
        render_response=anthropic_response.render_response,
        decoder=AnthropicDecoder,
        encoder=_anthropic_encoder,
        usage=anthropic_usage,
        error_body=anthropic_error_body,
        mid_conversation_system=False,
    ),
    "openai": Adapter(
        parse_request=openai_request.parse_request,
        render_request=openai_render.render_request,
        parse_response=openai_response.parse_response,
        render_response=openai_response.render_response,
        decoder=OpenAIDecoder,
        encoder=OpenAIEncoder,
        usage=openai_usage,
        error_body=openai_error_body,
    ),
    # OpenAI's Responses API: a client dialect everywhere, an upstream one only as itself.
    "responses": Adapter(
        parse_request=responses_request.parse_request,
        render_request=_no_request_render,
        parse_response=responses_response.parse_response,
        render_response=responses_response.render_response,
        decoder=ResponsesDecoder,
        encoder=ResponsesEncoder,
        usage=responses_usage,
        error_body=openai_error_body,
    ),
}


def adapter(dialect: Dialect | str) -> Adapter:
    """The adapter for `dialect`; InvalidRequest for a dialect nobody registered."""
    try:
        return ADAPTERS[dialect]
    except KeyError:
        raise InvalidRequest(f"unknown API dialect {dialect!r}") from None
