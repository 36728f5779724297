"""Relay an upstream SSE stream to the client chunk by chunk as it arrives, tapped (same dialect)
or translated (across dialects), always ending well-formed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from driftgate.proxy.errors import GatewayError
from driftgate.proxy.flow import Flow
from driftgate.proxy.forward import Answer
from driftgate.proxy.respond.headers import DROPPED
from driftgate.proxy.respond.outcome import StreamResult
from driftgate.proxy.respond.tap import stream_tap
from driftgate.proxy.serve.drain import Drain, shutting_down, uncancel_for_shutdown
from driftgate.proxy.serve.request import Request
from driftgate.proxy.serve.response import StreamResponse
from driftgate.proxy.translate import stream_translator
from driftgate.proxy.upstream.errors import (
    UpstreamDisconnected,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTooLarge,
    UpstreamTruncated,
)
from driftgate.proxy.upstream.transport import Response

log = logging.getLogger("driftgate.relay")

DRAIN_SECONDS = 1.0


class StreamProcessor(Protocol):
    """A StreamTap (same dialect) or StreamTranslator (across dialects)."""

    usage: Any

    def feed(self, chunk: bytes) -> bytes | None: ...
    def finish(self) -> bytes: ...
    def fail(self, message: str | GatewayError) -> bytes: ...
    @property
    def done(self) -> bool: ...


class ClientGone(Exception):
    """The client closed its connection while we were writing to it."""


def processor(flow: Flow) -> StreamProcessor:
    """Tap or translate, decided once: a tap when the upstream speaks the client's dialect."""
    if not flow.translated:
        return stream_tap(flow.upstream)
    return stream_translator(
        flow.upstream,
        flow.client_dialect,
        model=flow.model,
        include_usage=flow.include_usage,
        request=flow.body,
    )


async def _write(resp: StreamResponse, data: bytes) -> None:
    if _put(resp, data):
        await _drained(resp)


async def _end(resp: StreamResponse, data: bytes) -> None:
    if _put_end(resp, data):
        await _drained(resp)


# The writes without a coroutine: a coroutine only when the client reads slower than we write.
def _put(resp: StreamResponse, data: bytes) -> bool:
    try:
        return resp.put(data)
    except ConnectionError as exc:
        raise ClientGone from exc


def _put_end(resp: StreamResponse, data: bytes) -> bool:
    try:
        return resp.end(data)
    except ConnectionError as exc:
        raise ClientGone from exc


async def _drained(resp: StreamResponse) -> None:
    try:
        await resp.drain()
    except ConnectionError as exc:
        raise ClientGone from exc


def _ended(proc: StreamProcessor) -> bool:
    return proc.done or _malformed(proc) is not None


def _malformed(proc: StreamProcessor) -> str | None:
    value = getattr(proc, "malformed", None)
    return value if isinstance(value, str) and value else None


async def relay_stream(
    request: Request,
    answer: Answer,
    proc: StreamProcessor,
    headers: dict[str, str],
    drain: Drain,
    before_end: Callable[[], Awaitable[None]] | None = None,
) -> tuple[StreamResponse, StreamResult]:
    """Write each upstream chunk through `proc` to the client as it arrives; end well-formed
    (`before_end` runs once the last events are known, before they are sent)."""
    upstream = answer.response
    resp = StreamResponse(status=200, headers=headers)  # its head goes with the first bytes
    upstream_error: str | None = None
    clean = False
    try:
        # Output that ends the stream is held and sent with the terminating chunk: one send
        # (~8 us of syscall) fewer per stream. Anything before the end is written at once.
        last = (proc.feed(answer.first_chunk) or b"") if answer.first_chunk else b""
        # What translating the first chunk left out can still be named: the headers go next.
        dropped: tuple[str, ...] = getattr(proc, "dropped", ())
        if dropped:
            named = [d for d in resp.headers.get(DROPPED, "").split(",") if d]
            resp.headers[DROPPED] = ",".join([*named, *(d for d in dropped if d not in named)])
        writer = resp.prepare_now(request)
        if not _ended(proc):
            if last:
                if _put(resp, last):  # the headers go with it
                    await _drained(resp)
                last = b""
            else:
                writer.send_headers()  # nothing to relay yet: the client still sees the stream start
        if not _ended(proc):
            try:
                while chunk := await upstream.readany():
                    out = proc.feed(chunk)
                    if proc.done or _malformed(proc) is not None:
                        last = out or b""  # a tap hands back only the events before a malformed one
                        break
                    if out and _put(resp, out):
                        await _drained(resp)
                else:
                    clean = True
            except (UpstreamError, TimeoutError) as exc:
                upstream_error = _describe(exc)
        bad = _malformed(proc)
        if bad is not None:
            upstream_error = bad
        if upstream_error is not None:
            if not proc.done:
                last += proc.fail(upstream_error)
        else:
            last += proc.finish()
        if before_end is not None:
            await before_end()
        if _put_end(resp, last):
            await _drained(resp)
        if proc.done and upstream_error is None and not clean:
            # Usually the terminal event came with the body's end: no drain (its wait_for, a task
            # and a timer, cost ~10 us a stream).
            clean = upstream.at_eof() or await _drain(upstream)
        return resp, StreamResult(proc.usage, False, upstream_error)
    except ClientGone:
        return resp, StreamResult(proc.usage, True, upstream_error)
    except asyncio.CancelledError:
        if not uncancel_for_shutdown(drain):
            raise
        # The shutdown's grace ran out: end the stream well-formed, with the dialect's error.
        with contextlib.suppress(ClientGone, ConnectionError):
            if not resp.prepared:
                await resp.prepare(request)
            await _end(resp, b"" if proc.done else proc.fail(shutting_down()))
        return resp, StreamResult(proc.usage, False, None, stopped=True)
    except Exception:
        # A bug of ours mid-stream: the client still gets a well-formed end, never a torn stream.
        log.exception("relaying a stream failed")
        if not resp.prepared:
            raise
        with contextlib.suppress(ClientGone, ConnectionError):
            if not proc.done:
                await _write(resp, proc.fail("the gateway failed while relaying this stream"))
            await resp.write_eof()
        return resp, StreamResult(proc.usage, False, "gateway error")
    finally:
        if clean and upstream.at_eof():
            upstream.release()
        else:
            # Closing (not releasing) drops the connection: the upstream sees the cancel.
            upstream.close()


async def _drain(upstream: Response) -> bool:
    """After the terminal event (the client is done): read to EOF so the connection can be reused."""
    try:
        await asyncio.wait_for(upstream.read(), DRAIN_SECONDS)
    except (UpstreamError, TimeoutError):
        return False
    return upstream.at_eof()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "upstream stream timed out"
    if isinstance(exc, UpstreamTruncated):
        return "upstream stream ended early (truncated)"
    if isinstance(exc, UpstreamTooLarge):
        return f"upstream stream too large: {exc}"
    if isinstance(exc, UpstreamDisconnected):
        return "the upstream closed the connection mid-stream"
    if isinstance(exc, UpstreamProtocolError):
        return f"the upstream's stream broke the HTTP protocol mid-stream ({exc})"
    return "the upstream connection failed mid-stream"
