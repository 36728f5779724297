"""Anthropic Messages <-> OpenAI Chat Completions, through a dialect-neutral representation."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from driftgate.proxy.errors import Dialect, InvalidRequest
from driftgate.proxy.sse import Usage
from driftgate.proxy.translate.adapters import adapter
from driftgate.proxy.translate.input_checks import header_names, unique
from driftgate.proxy.translate.ir import ChatRequest, TextPart
from driftgate.proxy.translate.plain_request import BUILDERS
from driftgate.proxy.translate.sampling import fit_sampling
from driftgate.proxy.translate.stream import StreamTranslator, Translator
from driftgate.proxy.translate.upstream_error import translate_error

__all__ = [
    "Dialect",
    "RequestTranslation",
    "ResponseTranslation",
    "StreamTranslator",
    "Usage",
    "stream_translator",
    "translate_error",
    "translate_request",
    "translate_response",
    "usage_from_response",
]


@dataclass(slots=True)
class RequestTranslation:
    """A request body for the target dialect, and the features it had to leave out."""

    body: dict[str, Any]
    dropped: tuple[str, ...]
    # values moved into the target's range, e.g. "temperature 1.5->1"
    adjusted: tuple[str, ...] = ()


def translate_request(
    body: dict[str, Any],
    source: Dialect,
    target: Dialect,
    *,
    model: str,
    stream: bool = False,
    mid_conversation_system: bool | None = None,
) -> RequestTranslation:
    """`body` in `source`'s dialect as a `target` request for upstream `model`; InvalidRequest if malformed.

    `stream` is the intake's decision (the Flow's), never re-read from the body here.
    `mid_conversation_system` is the model's template capability (None: unknown, the target
    dialect's default); without it, system messages from mid-conversation join the system prompt.
    """
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    out = adapter(target)
    in_place = (
        out.mid_conversation_system if mid_conversation_system is None else mid_conversation_system
    )
    build = BUILDERS.get((source, target))
    if build is not None:  # a conversation of plain strings: built straight, no IR
        plain = build(body, model, stream, in_place)
        if plain is not None:
            return RequestTranslation(plain, ())
    return through_ir(body, source, target, model, stream, in_place)


def through_ir(
    body: dict[str, Any], source: Dialect, target: Dialect, model: str, stream: bool, in_place: bool
) -> RequestTranslation:
    """translate_request through the IR: parse `body`, fit its sampling, render it for `target`.

    `in_place`: mid-conversation system messages stay where they are (else they join the
    system prompt).
    """
    ir = adapter(source).parse_request(body)
    ir.stream = stream
    adjusted = fit_sampling(ir, source, target)
    if not in_place:
        ir = hoist_system(ir)
    rendered, dropped = adapter(target).render_request(ir, model)
    names = unique([*ir.dropped, *dropped]) if dropped else ir.dropped
    return RequestTranslation(rendered, header_names(names) if names else (), adjusted)


def hoist_system(ir: ChatRequest) -> ChatRequest:
    """`ir` with its mid-conversation system messages appended to the system prompt, in order."""
    moved = [p for m in ir.messages if m.role == "system" for p in m.parts]
    if not moved:
        return ir
    return replace(
        ir,
        system=(*ir.system, *(p for p in moved if isinstance(p, TextPart))),
        messages=tuple(m for m in ir.messages if m.role != "system"),
    )


@dataclass(slots=True)
class ResponseTranslation:
    """A response body for the client's dialect, and what of the upstream's answer it left out."""

    body: dict[str, Any]
    dropped: tuple[str, ...]
    usage: Usage  # the upstream's, read once here so the recorder need not parse the body again


def translate_response(
    body: dict[str, Any],
    source: Dialect,
    target: Dialect,
    *,
    model: str,
    request: dict[str, Any] | None = None,
) -> ResponseTranslation:
    """A non-streamed upstream response as the client's dialect expects it, answering as `model`.

    `request` is the client's own request body (a Responses answer echoes its settings).
    """
    parsed = adapter(source).parse_response(body)
    rendered, dropped = adapter(target).render_response(parsed, model, request)
    return ResponseTranslation(
        rendered, header_names(unique(dropped)) if dropped else (), parsed.usage
    )


def stream_translator(
    source: Dialect,
    target: Dialect,
    *,
    model: str,
    include_usage: bool,
    clock: Callable[[], float] = time.time,
    request: dict[str, Any] | None = None,
) -> Translator:
    """A translator from an upstream `source` stream to a `target` client stream answering as `model`."""
    usage = Usage()
    encoder = adapter(target).encoder(model, usage, include_usage, clock, request)
    return Translator(target, adapter(source).decoder(), encoder, usage)


def usage_from_response(body: dict[str, Any], dialect: Dialect) -> Usage:
    """Token usage of a non-streamed response."""
    return adapter(dialect).usage(body.get("usage") if isinstance(body, dict) else None)
