"""A whole (non-streamed) answer for the client: relayed as sent, or translated once."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import orjson

from driftgate.proxy.errors import Dialect, GatewayError
from driftgate.proxy.flow import Flow
from driftgate.proxy.translate import translate_error, translate_response

log = logging.getLogger("driftgate.relay")


@dataclass(slots=True)
class WholeBody:
    """A non-streamed answer for the client, and what translating it left out of the upstream's."""

    status: int
    body: bytes
    dropped: tuple[str, ...] = ()
    usage: Any = None  # a translated answer's usage, already read (else the recorder reads `body`)
    rendered: dict[str, Any] | None = None  # a translated answer, before serialising


def whole_body(flow: Flow, status: int, raw: bytes) -> WholeBody:
    """Status and body for the client: unchanged in its own dialect, else translated once
    (an upstream error mapped to the client's dialect, keeping its message)."""
    if not flow.translated:
        return WholeBody(status, raw)
    upstream = flow.upstream
    if status >= 400:
        return WholeBody(
            status, orjson.dumps(translate_error(status, raw, upstream, flow.client_dialect))
        )
    try:
        parsed = orjson.loads(raw)
        tr = translate_response(
            parsed, upstream, flow.client_dialect, model=flow.model, request=flow.body
        )
    except Exception as exc:  # an upstream answer we cannot read is the upstream's fault: 502
        why = _unreadable(exc, upstream)
        log.warning("untranslatable %s response: %s", upstream, why)
        msg = f"upstream returned a response that could not be translated: {why}"
        err = translate_error(502, msg.encode(), upstream, flow.client_dialect)
        return WholeBody(502, orjson.dumps(err))
    return WholeBody(status, _json(tr.body), tr.dropped, tr.usage, tr.body)


def _json(body: dict[str, Any]) -> bytes:
    """orjson's bytes, or past 64 bits (where orjson raises: a usage count an upstream sent that
    large, or the sum of cached and uncached tokens a translated usage reports) the standard
    library's, in the same compact form with every integer in full."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _unreadable(exc: Exception, upstream: Dialect) -> str:
    """Why an upstream body could not be translated, in words (never an exception class name)."""
    if isinstance(exc, orjson.JSONDecodeError):
        return "its body is not JSON"
    if isinstance(exc, GatewayError):
        return exc.message
    if isinstance(exc, KeyError):
        return f"the field {exc.args[0]!r} is missing"
    return f"its body is not shaped like an {upstream} API response"
