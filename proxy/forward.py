"""Send a flow upstream, trying each route in order until one answers (the fallback loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from driftgate.proxy.auth import BackendAuth, GatewayKey, anthropic_version, upstream_headers
from driftgate.proxy.cooldown import Cooldowns, parse_retry_after
from driftgate.proxy.errors import (
    Dialect,
    GatewayError,
    InvalidRequest,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from driftgate.proxy.flow import Flow
from driftgate.proxy.normalise import (
    ADJUSTED,
    REASONING_FROM_ANTHROPIC,
    capability,
    filter_betas,
    normalise,
    without_reasoning,
)
from driftgate.proxy.observe.upstream_stats import (
    CONNECT,
    TIMEOUT,
    UpstreamStats,
    kind_of_status,
)
from driftgate.proxy.responses.turns import Expanded, Loaded
from driftgate.proxy.routing import Route
from driftgate.proxy.templates.loader import TemplateSet
from driftgate.proxy.translate import translate_request
from driftgate.proxy.upstream.errors import UpstreamConnectError, UpstreamError
from driftgate.proxy.upstream.transport import Response, Timeouts, Transport

SHORT_RETRY_AFTER = 2.0  # seconds: on the last route, worth waiting once rather than failing
ENDPOINT_FOR_DIALECT = {"anthropic": "messages", "openai": "chat", "responses": "responses"}
# Fills in what a Responses request refers to (previous_response_id, item_reference) before it
# is translated for a backend that does not keep conversations itself.
Expander = Callable[[dict[str, Any], Loaded | None], Expanded]


@dataclass(slots=True)
class Prepared:
    """One route's upstream request, ready to send."""

    route: Route
    auth: BackendAuth
    url: str
    body: bytes
    headers: dict[str, str]
    timeout: Timeouts
    dropped: tuple[str, ...]
    added_headers: Mapping[str, str]
    translated_reasoning: bool = False  # reasoning_effort written by the gateway, not the client
    dialect: Dialect = "openai"  # what the upstream speaks for this request
    translated: bool = False  # across dialects: the answer is translated back for the client
    expanded: Expanded | None = None  # a translated Responses request, its references filled in


@dataclass(slots=True)
class Answer:
    """The upstream that answered: its response (open when streaming) and, when read, its body."""

    prepared: Prepared
    response: Response
    body: bytes | None  # the whole body (non-stream or error); None for an open stream
    first_chunk: bytes  # streaming: the first bytes read, still to be relayed
    ttfb: float

    @property
    def status(self) -> int:
        """The upstream HTTP status."""
        return self.response.status


class Forwarder:
    """Runs the fallback loop over each backend's transport, with cooldowns and the key rules."""

    def __init__(
        self,
        transport: Callable[[str], Transport],
        auths: Mapping[str, BackendAuth],
        cooldowns: Cooldowns,
        gateway_key: GatewayKey,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        expand: Expander | None = None,
        stats: UpstreamStats | None = None,
    ) -> None:
        self._transport = transport  # backend name -> its transport
        self._expand = expand
        self.stats = stats or UpstreamStats(clock)
        self._auths = auths
        self._cooldowns = cooldowns
        self._key = gateway_key
        self._clock = clock
        self._sleep = sleep
        # (backend, model) pairs that refused a reasoning_effort the gateway had translated
        self._no_reasoning: set[tuple[str, str]] = set()
        self._version: tuple[TemplateSet | None, str] = (None, "")

    def _anthropic_version(self, templates: TemplateSet) -> str:
        """The templates' anthropic-version, looked up once per template set (not per request)."""
        seen, version = self._version
        if seen is not templates:
            version = anthropic_version(templates)
            self._version = (templates, version)
        return version

    def candidates(self, routes: Sequence[Route]) -> Sequence[Route]:
        """Routes whose backend is not cooling; if all are, the one that frees soonest."""
        if not self._cooldowns.anything_cooling:
            return routes  # the usual case: nothing cools, so no clock read per route
        usable = [r for r in routes if self._cooldowns.cooling(r.backend.name) <= 0.0]
        if usable or not routes:
            return usable
        # Failing fast on every route would turn one transient error into a 30 s outage.
        return [min(routes, key=lambda r: self._cooldowns.cooling(r.backend.name))]

    def prepare(
        self, flow: Flow, route: Route, templates: TemplateSet, convert_unsupported: bool
    ) -> Prepared:
        """Translate (across dialects) and normalise the body for `route`, and build its headers."""
        auth = self._auths[route.backend.name]
        target: Dialect = flow.client_dialect if flow.client_dialect in auth.takes else auth.dialect
        dropped: tuple[str, ...] = ()
        adjusted: tuple[str, ...] = ()
        translated = target != flow.client_dialect
        expanded: Expanded | None = None
        if not translated:
            body = flow.body
        else:
            source = flow.body
            if flow.client_dialect == "responses" and self._expand is not None:
                expanded = self._expand(flow.body, flow.stored)
                source = expanded.body
            tr = translate_request(
                source,
                flow.client_dialect,
                target,
                model=route.model,
                stream=flow.stream,
                mid_conversation_system=capability(
                    templates, target, route.model, "mid_conversation_system"
                ),
            )
            body, dropped, adjusted = tr.body, tr.dropped, tr.adjusted
            if (route.backend.name, route.model) in self._no_reasoning and target == "openai":
                body = without_reasoning(body)
                dropped = (*dropped, REASONING_FROM_ANTHROPIC)
        norm = normalise(
            body,
            target,
            route,
            templates,
            convert_unsupported=convert_unsupported,
            translated=translated,
        )
        if norm.dropped:
            dropped = (*dropped, *(d for d in norm.dropped if d not in dropped))
        out = norm.body
        if out is flow.body and out.get("model") == route.model:
            data = flow.raw  # nothing changed: the client's exact bytes, every field kept
        else:
            if out is flow.body:
                out = dict(out)
            out["model"] = route.model
            data = orjson.dumps(out)
        beta_raw = flow.headers.get("anthropic-beta")
        beta = filter_betas(beta_raw, route.backend.kind, templates) if beta_raw else None
        headers, unsent = upstream_headers(
            auth,
            flow.headers,
            flow.client_dialect,
            self._anthropic_version(templates),
            self._key,
            beta,
        )
        if unsent:
            dropped = (*dropped, *unsent)
        endpoint = flow.endpoint if target == flow.client_dialect else ENDPOINT_FOR_DIALECT[target]
        url = auth.url(endpoint)
        if flow.query and target == flow.client_dialect:
            url = f"{url}?{flow.query}"
        timeout = auth.stream_timeout if flow.stream else auth.whole_timeout
        reasoning = translated and target == "openai" and "reasoning_effort" in out
        added = norm.response_headers
        if adjusted:
            added = dict(added)
            added[ADJUSTED] = ", ".join((*adjusted, *filter(None, [added.get(ADJUSTED)])))
        return Prepared(
            route,
            auth,
            url,
            data,
            headers,
            timeout,
            dropped,
            added,
            reasoning,
            target,
            translated,
            expanded,
        )

    async def send(
        self, flow: Flow, routes: Sequence[Route], templates: TemplateSet, convert_unsupported: bool
    ) -> Answer:
        """The first answer that is not a retryable failure; else the last failure (or raise 502/504)."""
        last: Answer | None = None
        failure: GatewayError | None = None
        todo = self.candidates(routes)
        for i, route in enumerate(todo):
            flow.route = route
            try:
                prepared = self.prepare(flow, route, templates, convert_unsupported)
            except InvalidRequest:
                if i == 0:
                    raise  # about the model the client asked for: theirs to fix
                continue  # a fallback that cannot take this request is no fallback
            retried = False
            while True:
                try:
                    answer = await self._attempt(flow, prepared)
                except TimeoutError:
                    self.stats.failed(route.backend.name, TIMEOUT)
                    self._cooldowns.fail(route.backend.name)
                    failure = UpstreamTimeout(f"backend {route.backend.name!r} timed out")
                    break
                except UpstreamError as exc:
                    self.stats.failed(route.backend.name, CONNECT)
                    self._cooldowns.fail(route.backend.name)
                    what = "unreachable" if isinstance(exc, UpstreamConnectError) else "failed"
                    failure = UpstreamUnavailable(
                        f"backend {route.backend.name!r} {what}: {exc}"  # no secrets: host, port, reason
                    )
                    break
                status = answer.response.status
                if status < 400:  # the usual answer: counted, any cooldown cleared, returned
                    self.stats.ok(route.backend.name)
                    self._cooldowns.ok(route.backend.name)
                    return _answered(flow, answer)
                if _refused_translated_reasoning(answer):
                    # A model without reasoning (unknown to the templates) refused the field the
                    # gateway wrote: answer without it, now and for later requests to that model.
                    self._no_reasoning.add((route.backend.name, route.model))
                    prepared = self.prepare(flow, route, templates, convert_unsupported)
                    continue
                kind = kind_of_status(status)
                if kind is None:
                    self.stats.ok(route.backend.name)
                else:
                    self.stats.failed(route.backend.name, kind)
                if not _retryable(status):
                    return _answered(flow, answer)
                retry_after = parse_retry_after(answer.response.headers.get("retry-after"))
                self._cooldowns.fail(route.backend.name, retry_after)
                last = answer
                is_last = i == len(todo) - 1
                if (
                    is_last
                    and not retried
                    and retry_after is not None
                    and retry_after <= SHORT_RETRY_AFTER
                ):
                    retried = True
                    await self._sleep(retry_after)
                    continue
                break
        if last is not None:
            return _answered(flow, last)  # an upstream's own error says more than our 502
        raise failure or UpstreamUnavailable("no backend available for this model")

    async def _attempt(self, flow: Flow, p: Prepared) -> Answer:
        """One upstream exchange: headers, then the whole body (or, streaming, the first chunk)."""
        resp = await self._transport(p.route.backend.name).post(p.url, p.body, p.headers, p.timeout)
        try:
            # Whole or stream is decided here, once: a stream asked for and answered as one.
            if (
                flow.stream
                and resp.status == 200
                and resp.content_type == "text/event-stream"  # parsed only when streaming asked
            ):
                first = await resp.readany()
                return Answer(p, resp, None, first, self._clock() - flow.started)
            body = resp.read_now()
            if body is None:  # still on its way
                body = await resp.read()
        except BaseException:
            resp.close()
            raise
        resp.release()
        return Answer(p, resp, body, b"", self._clock() - flow.started)


def _answered(flow: Flow, answer: Answer) -> Answer:
    """Put on the flow what the answering route decided, for respond and record to read."""
    p = answer.prepared
    flow.route = p.route
    flow.upstream = p.dialect
    flow.translated = p.translated
    flow.streamed = answer.body is None
    return answer


def _refused_translated_reasoning(answer: Answer) -> bool:
    return (
        answer.status == 400
        and answer.prepared.translated_reasoning
        and b"reasoning_effort" in (answer.body or b"")
    )


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500
