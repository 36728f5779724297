"""The respond step: one place that turns the forwarded answer into the client's response
(whole or streamed, relayed or translated, with its headers) and hands the outcome to the record."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from driftgate.proxy.errors import UpstreamTimeout, UpstreamUnavailable
from driftgate.proxy.flow import Flow
from driftgate.proxy.forward import Answer
from driftgate.proxy.observe.keeper import CLIENT_GONE, RecordKeeper
from driftgate.proxy.observe.upstream_stats import UpstreamStats
from driftgate.proxy.respond.headers import (
    JSON_CT,
    SSE_HEADERS,
    also_dropped,
    answer_headers,
    estimate_headers,
    whole_content_type,
)
from driftgate.proxy.respond.outcome import StreamResult
from driftgate.proxy.respond.stream import processor, relay_stream
from driftgate.proxy.respond.whole import whole_body
from driftgate.proxy.responses.turns import ConversationStore, Expanded, Output
from driftgate.proxy.routing import Route
from driftgate.proxy.serve.drain import SHUTDOWN_REASON, SHUTDOWN_STATUS, Drain
from driftgate.proxy.serve.protocol import Reply
from driftgate.proxy.serve.request import Request
from driftgate.proxy.serve.response import Response
from driftgate.proxy.translate.responses_stream import ResponsesEncoder
from driftgate.proxy.translate.stream import Translator


class Responder:
    """Answers the client from the forwarded answer, then records how the exchange ended."""

    def __init__(
        self,
        keeper: RecordKeeper,
        stats: UpstreamStats,
        conversations: ConversationStore,
        drain: Drain,
    ) -> None:
        self.keeper = keeper
        self.stats = stats
        self.conversations = conversations
        self.drain = drain

    def respond(self, request: Request, flow: Flow, answer: Answer) -> Awaitable[Reply]:
        """The client's response to `answer` (whole or streamed, as forward found it), recorded
        (the coroutine of the step that answers: no coroutine of its own)."""
        headers = answer_headers(flow, answer.prepared, answer.response)
        if flow.streamed:
            return self._stream(request, flow, answer, headers)
        return self._whole(request, flow, answer, headers)

    async def estimated(
        self, request: Request, flow: Flow, route: Route, doc: dict[str, Any], tokens: int
    ) -> Reply:
        """A count the gateway estimated itself (no upstream counts for this route), recorded."""
        flow.route = route
        resp = Response(
            body=orjson.dumps(doc),
            content_type=JSON_CT,
            headers=estimate_headers(route.backend.name),
        )
        resp.send(request)
        self.keeper.estimated(flow, tokens)
        return resp

    def unanswered(self, flow: Flow, exc: BaseException) -> bool:
        """Forwarding raised `exc`: one record of why no upstream answered; False when there is
        nothing to record (refused before any upstream ran)."""
        if isinstance(exc, asyncio.CancelledError):
            # The client hung up before any upstream answered: still one record, 499, no usage
            # (503 when the shutdown cut it: the gateway's doing, not the client's).
            if self.drain.expired:
                self.keeper.unanswered(flow, SHUTDOWN_STATUS, SHUTDOWN_REASON)
            else:
                self.keeper.client_gone(flow)
            return True
        if isinstance(exc, (UpstreamUnavailable, UpstreamTimeout)):
            # No upstream answered at all: one record (502 or 504) so `driftgate usage` counts it.
            self.keeper.unanswered(flow, exc.status)
            return True
        return False

    async def _whole(
        self,
        request: Request,
        flow: Flow,
        answer: Answer,
        headers: dict[str, str],
    ) -> Reply:
        """Send a whole answer (relayed as sent, or translated once) and record it."""
        p = answer.prepared
        raw = answer.body or b""
        whole = whole_body(flow, answer.response.status, raw)
        if whole.dropped:
            also_dropped(headers, p.dropped, whole.dropped)
        resp = Response(
            status=whole.status,
            body=whole.body,
            content_type=whole_content_type(flow, answer.response),
            headers=headers,
        )
        status = whole.status
        try:
            if self.conversations.shared and whole.rendered is not None and p.expanded is not None:
                # Filed before the client has the id: its next request may reach another worker
                # or host.
                await self.conversations.file(p.expanded, whole.rendered)
            resp.send(request)  # the whole answer in one write: nothing to await
        except ConnectionError:
            status = CLIENT_GONE  # the client left while the answer was being written
        except asyncio.CancelledError:
            status = SHUTDOWN_STATUS if self.drain.expired else CLIENT_GONE
            self.keeper.whole_done(
                flow, status, raw, answer.ttfb, whole.usage, answer.response.headers
            )
            raise
        # A translated answer's usage was read while translating: the recorder thread skips a
        # second parse of the upstream body.
        self.keeper.whole_done(flow, status, raw, answer.ttfb, whole.usage, answer.response.headers)
        if whole.rendered is not None and p.expanded is not None and not self.conversations.shared:
            self.conversations.remember(p.expanded, whole.rendered)
        return resp

    async def _stream(
        self,
        request: Request,
        flow: Flow,
        answer: Answer,
        headers: dict[str, str],
    ) -> Reply:
        """Relay an upstream stream (tapped, or translated across dialects) and record it."""
        p = answer.prepared
        headers.update(SSE_HEADERS)
        proc = processor(flow)
        before_end = None
        # A turn the client asked not to store is never kept: its output items (dicts the encoder
        # builds only when read) are not asked for.
        stored = p.expanded if p.expanded is not None and p.expanded.store else None
        if stored is not None and self.conversations.shared and isinstance(proc, Translator):
            before_end = self._filer(stored, proc)
        try:
            stream_resp, result = await relay_stream(
                request, answer, proc, headers, self.drain, before_end
            )
        except asyncio.CancelledError:
            # Cancelled while waiting on the upstream: record what was streamed so far (499).
            gone = StreamResult(proc.usage, True, None)
            self.keeper.stream_done(flow, gone, answer.ttfb, answer.response.headers)
            raise
        if result.upstream_error is not None:
            self.stats.stream_broke(p.route.backend.name)
        self.keeper.stream_done(flow, result, answer.ttfb, answer.response.headers)
        if stored is not None and before_end is None and isinstance(proc, Translator):
            encoder = proc.encoder
            if isinstance(encoder, ResponsesEncoder) and encoder.succeeded:
                self.conversations.remember(stored, turn_output(encoder))
        return stream_resp

    def _filer(self, expanded: Expanded, proc: Translator) -> Callable[[], Awaitable[None]]:
        """What files a translated Responses stream's turn before its last event is sent."""

        async def file() -> None:
            encoder = proc.encoder
            if isinstance(encoder, ResponsesEncoder) and encoder.succeeded:
                await self.conversations.file(expanded, turn_output(encoder))

        return file


def turn_output(encoder: ResponsesEncoder) -> Output:
    """What the store keeps of a streamed turn: the items' bytes the client got are filed as
    they are, and no Response object is built only to be taken apart again."""
    return Output(encoder.response_id, encoder.output, encoder.output_bytes)
