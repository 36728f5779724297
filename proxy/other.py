"""The /v1/ endpoints the gateway does not serve itself (embeddings, files, batches, Responses
retrieval, a model's details...): forwarded as sent to one backend of the client's dialect and
answered as received, never translated.

A request reads: which dialect (the client's headers) -> which backend (the body's model, else
default_backend, else the only backend of that dialect) -> the guard (a POST may bill) ->
forward (the backend's credentials) -> relay (whole JSON, else chunk by chunk) -> record.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import orjson

from driftgate.proxy.auth import anthropic_version, upstream_headers
from driftgate.proxy.config import BackendConfig, Config
from driftgate.proxy.endpoints import ENDPOINTS
from driftgate.proxy.errors import (
    Dialect,
    GatewayError,
    InvalidRequest,
    NotFound,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from driftgate.proxy.flow import Flow
from driftgate.proxy.guard.guard import GuardRefused
from driftgate.proxy.models_list import wants_anthropic_shape
from driftgate.proxy.normalise import filter_betas
from driftgate.proxy.observe.keeper import CLIENT_GONE
from driftgate.proxy.respond.headers import BACKEND, passed_headers
from driftgate.proxy.responses.turns import ConversationStore
from driftgate.proxy.routing import Route, Router
from driftgate.proxy.serve.protocol import Reply
from driftgate.proxy.serve.request import Request
from driftgate.proxy.serve.response import Response, StreamResponse
from driftgate.proxy.templates.loader import TemplateSet
from driftgate.proxy.upstream.errors import UpstreamConnectError, UpstreamError
from driftgate.proxy.upstream.transport import Response as UpstreamResponse

if TYPE_CHECKING:
    from driftgate.proxy.app import Gateway

# The paths the gateway answers itself: any other method on them is the gateway's 404, not a
# request for an upstream.
OWN_PATHS = frozenset({*(e.path for e in ENDPOINTS), "/v1/models"})
RESPONSES_PREFIX = "/v1/responses/"
NO_MODEL = "-"  # what a record names as the model of a request whose body names none
# Methods that may bill (an embedding, a batch): refused while the spend guard is halted.
BILLING_METHODS = frozenset({"POST", "PUT", "PATCH"})
_SEGMENT = re.compile(r"[a-z][a-z0-9_.-]{0,39}")
_JSON_TYPES = ("application/json", "application/problem+json")
_KIND_NAMES = {"anthropic": "Anthropic", "openai": "OpenAI"}


class NotForwarded(InvalidRequest):
    """An other-endpoint request that no configured backend can take as it is."""

    openai_code = "endpoint_not_forwarded"


def client_dialect(path: str, headers: Mapping[str, str]) -> Dialect:
    """Anthropic for its SDKs' headers (or a /v1/messages... path), else OpenAI: as the
    gateway reads a client elsewhere (its errors, /v1/models)."""
    if path.startswith("/v1/messages") or wants_anthropic_shape(headers):
        return "anthropic"
    return "openai"


def endpoint_name(path: str) -> str:
    """The record's endpoint: `other:` and the path's first segment after /v1/ (`other` when it
    is not a plain name), so usage never mixes these with completions."""
    first = path[4:].partition("/")[0]
    return f"other:{first}" if _SEGMENT.fullmatch(first) else "other"


def model_of(raw: bytes, content_type: str | None) -> str | None:
    """The string `model` of a JSON object body, else None (GET, DELETE, multipart...)."""
    if not raw or (content_type is not None and "json" not in content_type.lower()):
        return None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None  # the upstream is the judge of its own endpoint's body
    if isinstance(body, dict):
        model = body.get("model")
        if isinstance(model, str) and model:
            return model
    return None


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def forwarded_path(target: bytes, path: str) -> str:
    """The path to forward, as the client encoded it (an id's `%2F` stays one segment), from
    the request target as sent; `path` is the same decoded. Refused (the gateway's 404): a
    path outside /v1/, one of the gateway's own paths in another method, and any path that
    could reach elsewhere upstream than it reads: a `.`, `..` or empty segment (encoded or
    not: `/v1/%2e%2e/admin`, `/v1//chat/completions`, a trailing slash) or a control
    character (an encoded CR LF)."""
    if target.startswith((b"http://", b"https://")):  # absolute-form, as the server reads it
        slash = target.find(b"/", target.index(b"//") + 2)
        target = target[slash:] if slash >= 0 else b"/"
    raw = target.partition(b"?")[0].decode("latin-1")
    if not path.startswith("/v1/") or path in OWN_PATHS:
        raise NotFound(f"no such endpoint: {path}")
    for segment in raw[4:].split("/"):
        plain = unquote(segment) if "%" in segment else segment
        if plain in ("", ".", "..") or _CONTROL.search(plain):
            raise NotFound(
                f"no such endpoint: {path} (a path with an empty, '.' or '..' segment or a "
                "control character is not forwarded)"
            )
    return raw


def response_id(path: str) -> str | None:
    """The id in /v1/responses/{id}[/...] (None for another path)."""
    if not path.startswith(RESPONSES_PREFIX):
        return None
    rid = path[len(RESPONSES_PREFIX) :].partition("/")[0]
    return rid or None


def _backend_label(b: BackendConfig) -> str:
    return f"backend {b.name!r}, an {_KIND_NAMES.get(b.kind, b.kind)} backend"


def choose_route(
    config: Config,
    router: Router,
    path: str,
    dialect: Dialect,
    model: str | None,
    templates: TemplateSet | None = None,
) -> Route:
    """The one backend an other-endpoint request goes to, or NotForwarded saying what to do."""
    retrieval = dialect == "openai" and path.startswith(RESPONSES_PREFIX)
    takes: Callable[[BackendConfig], bool]
    if retrieval:
        takes = _serves_responses
        speaking = "serves the Responses API (`responses = true`)"
    else:
        takes = _of_kind(dialect)
        speaking = f"speaks the {_KIND_NAMES[dialect]} API"
    if model is not None:
        routes = router.resolve(model, templates)  # Unroutable: the model's own 404
        for route in routes:
            if takes(route.backend):
                return route
        head = routes[0].backend
        why = (
            "does not serve the Responses API (set `responses = true` on a backend that does)"
            if retrieval
            else f"{path} is not translated; route the model to a backend that {speaking}"
        )
        raise NotForwarded(f"model {model!r} routes to {_backend_label(head)}: {why}")
    default = config.backend(config.default_backend) if config.default_backend else None
    if default is not None and takes(default):
        return Route(default, NO_MODEL, NO_MODEL)
    able = [b for b in config.backends if takes(b)]
    if len(able) == 1:
        return Route(able[0], NO_MODEL, NO_MODEL)
    if not able:
        configured = ", ".join(_backend_label(b) for b in config.backends) or "none"
        raise NotForwarded(
            f"{path} is forwarded as it is to a backend that {speaking}, and no configured "
            f"backend does (configured: {configured}); add one with `driftgate backend add`"
        )
    names = ", ".join(repr(b.name) for b in able)
    raise NotForwarded(
        f"{path} names no model and several backends {_plural(speaking)} ({names}): "
        f'set default_backend = "{able[0].name}" under [gateway] to choose one'
    )


def _plural(speaking: str) -> str:
    return speaking.replace("speaks", "speak").replace("serves", "serve")


def _serves_responses(b: BackendConfig) -> bool:
    return b.serves_responses


def _of_kind(dialect: str) -> Callable[[BackendConfig], bool]:
    return lambda b: b.kind == dialect


async def keeps_turn(store: ConversationStore, rid: str) -> bool:
    """Whether `rid` is a turn the gateway itself keeps (a translated or bridged Responses turn)."""
    probe: dict[str, Any] = {"previous_response_id": rid, "input": []}
    try:
        store.expand(probe, await store.load(probe))
    except GatewayError:  # not found (or a shared store that cannot say): not the gateway's
        return False
    return True


def kept_turn(rid: str) -> NotFound:
    """The 404 for a turn the gateway keeps: it cannot be retrieved, only continued."""
    return NotFound(
        f"Response with id '{rid}' is a turn driftgate keeps itself (a backend without the "
        "Responses API answered it): it keeps such turns only to continue the conversation "
        "with previous_response_id, and cannot retrieve, list or delete them."
    )


@dataclass(slots=True)
class _Outbound:
    """One forwarded request: where, what, and with which headers."""

    method: str
    url: str
    body: bytes
    headers: dict[str, str]


class OtherEndpoints:
    """The gateway's fallback handler: forwards other /v1/ endpoints, else the 404 of old."""

    def __init__(self, gateway: Gateway) -> None:
        self._gw = gateway

    async def handle(self, request: Request) -> Reply:
        """Forward `request` as sent to one backend and relay its answer as received."""
        gw = self._gw
        config = gw.config
        path = request.path
        if not path.startswith("/v1/") or path in OWN_PATHS:
            raise NotFound(f"no such endpoint: {request.method} {path}")
        if not config.forward_other_endpoints:
            raise NotFound(
                f"no such endpoint: {request.method} {path} (this gateway does not forward the "
                "endpoints it does not serve itself: [gateway] forward_other_endpoints = false)"
            )
        gw.key.check(request.headers)
        upstream_path = forwarded_path(request.target, path)
        dialect = client_dialect(path, request.headers)
        started = gw.clock()
        raw = request.read_now(config.max_body_bytes)
        if raw is None:
            raw = await request.read(config.max_body_bytes, config.body_timeout)
        rid = response_id(path) if dialect == "openai" else None
        if rid is not None and rid.startswith("resp_") and await keeps_turn(gw.conversations, rid):
            raise kept_turn(rid)
        templates = gw.store.current()
        model = model_of(raw, request.headers.get("content-type"))
        route = choose_route(config, gw.router, path, dialect, model, templates)
        flow = _flow(request, dialect, route, model, started, templates)
        out = self._outbound(request, upstream_path, dialect, route, model, raw, templates)
        if request.method in BILLING_METHODS and gw.guard.enabled:
            try:  # nothing reserved (it cannot be priced); what its record prices settles
                flow.ticket = await gw.guard.admit(
                    len(raw), {}, route.backend.name, route.model, dialect, templates, usd=0.0
                )
            except GuardRefused as refused:
                gw.keeper.refused(flow, route, refused.status, refused.outcome, refused.reason)
                raise
        auth = gw.auths[route.backend.name]
        try:
            resp = await gw.transport(route.backend.name).request(
                out.method, out.url, out.body, out.headers, auth.stream_timeout
            )
        except asyncio.CancelledError:
            gw.keeper.client_gone(flow)
            raise
        except (UpstreamError, TimeoutError) as exc:
            failure = _failure(route.backend.name, exc)
            gw.keeper.unanswered(flow, failure.status)
            raise failure from None
        return await _relay(gw, request, flow, resp, started)

    def _outbound(
        self,
        request: Request,
        path: str,
        dialect: Dialect,
        route: Route,
        model: str | None,
        raw: bytes,
        templates: TemplateSet,
    ) -> _Outbound:
        """The upstream request: the client's bytes (a routed model's id written in), the
        client's headers but its credentials, the backend's credentials."""
        gw = self._gw
        auth = gw.auths[route.backend.name]
        body = raw
        if model is not None and route.model != model:  # an alias or BACKEND: prefix resolved
            doc = orjson.loads(raw)
            doc["model"] = route.model
            body = orjson.dumps(doc)
        beta_raw = request.headers.get("anthropic-beta")
        beta = filter_betas(beta_raw, route.backend.kind, templates) if beta_raw else None
        headers, _ = upstream_headers(
            auth, request.headers, dialect, anthropic_version(templates), gw.key, beta
        )
        content_type = request.headers.get("content-type")
        if content_type:  # multipart uploads keep their boundary
            headers["content-type"] = content_type
        elif not body:
            headers.pop("content-type", None)
        url = auth.backend.base_url + (path[3:] if auth.dialect == "openai" else path)
        if request.raw_query:
            url = f"{url}?{request.raw_query}"
        return _Outbound(request.method, url, body, headers)


def _flow(
    request: Request,
    dialect: Dialect,
    route: Route,
    model: str | None,
    started: float,
    templates: TemplateSet,
) -> Flow:
    """What the record of an other-endpoint request reads (no body kept)."""
    headers = request.headers
    flow = Flow(
        endpoint_name(request.path),
        dialect,
        b"",
        {},
        model or NO_MODEL,
        False,
        False,
        headers,
        request.raw_query,
        started,
        headers.get("x-claude-code-session-id") or headers.get("x-session-id"),
    )
    flow.route = route
    # Priced only when the body named a model (an embedding may have a price; a file list has none).
    flow.templates = templates if model is not None else None
    flow.upstream = "anthropic" if route.backend.kind == "anthropic" else "openai"
    return flow


def _failure(backend: str, exc: BaseException) -> UpstreamUnavailable:
    """The 502 (504 for a timeout) when the backend could not be reached."""
    if isinstance(exc, TimeoutError):  # the transport's UpstreamTimeout is one too
        return UpstreamTimeout(f"backend {backend!r} timed out")
    what = "unreachable" if isinstance(exc, UpstreamConnectError) else "failed"
    return UpstreamUnavailable(f"backend {backend!r} {what}: {exc}")


def _answer_headers(backend: str, upstream: UpstreamResponse) -> dict[str, str]:
    """The headers relayed as for completions, with the upstream's own content type."""
    headers = {BACKEND: backend}
    passed_headers(upstream.headers, headers)
    content_type = upstream.headers.get("Content-Type")
    if content_type:
        headers["content-type"] = content_type
    return headers


def _is_json(upstream: UpstreamResponse) -> bool:
    return upstream.content_type in _JSON_TYPES


async def _relay(
    gw: Gateway, request: Request, flow: Flow, upstream: UpstreamResponse, started: float
) -> Reply:
    """Answer as the upstream answered: a JSON body whole (its usage recorded), anything else
    chunk by chunk as it arrives (whole when it has all come with the head); the upstream
    connection is freed however it ends."""
    assert flow.route is not None
    headers = _answer_headers(flow.route.backend.name, upstream)
    ttfb = gw.clock() - started
    status = upstream.status
    if request.method == "HEAD":
        upstream.close()  # a HEAD answer has no body to read
        gw.keeper.whole_done(flow, status, b"", ttfb, None, upstream.headers)
        return Response(status=status, headers=headers)
    body = upstream.read_now()  # all in hand already (a 204, a small body): sent whole
    if body is not None or _is_json(upstream):
        try:
            if body is None:
                body = await upstream.read()
        except (UpstreamError, TimeoutError) as exc:
            upstream.close()
            failure = _failure(flow.route.backend.name, exc)
            gw.keeper.unanswered(flow, failure.status)
            raise failure from None
        except BaseException:
            upstream.close()
            gw.keeper.client_gone(flow)
            raise
        upstream.release()
        reply = Response(status=status, body=body, headers=headers)
        try:
            reply.send(request)
        except ConnectionError:
            status = CLIENT_GONE
        usage_from = body if _is_json(upstream) else b""  # the recorder parses a JSON body only
        gw.keeper.whole_done(flow, status, usage_from, ttfb, None, upstream.headers)
        return reply
    return await _relay_stream(gw, request, flow, upstream, headers, ttfb)


async def _relay_stream(
    gw: Gateway,
    request: Request,
    flow: Flow,
    upstream: UpstreamResponse,
    headers: dict[str, str],
    ttfb: float,
) -> Reply:
    """Relay the body chunk by chunk; a body the upstream breaks off is broken off for the
    client too (the connection closes without the last chunk), never ended as if whole."""
    status = upstream.status
    resp = StreamResponse(status=status, headers=headers)
    clean = False
    try:
        resp.prepare_now(request)
        while chunk := await upstream.readany():
            if resp.put(chunk):
                await resp.drain()
        clean = True
        resp.end()
    except ConnectionError:
        status = CLIENT_GONE
    except (UpstreamError, TimeoutError):
        status = 502  # the client sees a cut body: the connection closes unended
    except asyncio.CancelledError:
        gw.keeper.whole_done(flow, CLIENT_GONE, b"", ttfb, None, upstream.headers)
        raise
    finally:
        if clean and upstream.at_eof():
            upstream.release()
        else:
            upstream.close()  # the upstream sees the request abandoned
    gw.keeper.whole_done(flow, status, b"", ttfb, None, upstream.headers)
    return resp
