"""The observability endpoints: GET /metrics and GET /analytics/stream."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import orjson

from driftgate.proxy.auth import GatewayKey
from driftgate.proxy.errors import GatewayError, InvalidRequest
from driftgate.proxy.observe.live_tail import BATCH, POLL_SECONDS, UsageTail
from driftgate.proxy.observe.metrics import CONTENT_TYPE
from driftgate.proxy.observe.observer import Observer
from driftgate.proxy.observe.pg.url import reason
from driftgate.proxy.observe.summary import BadWindow, Summary, parse_window, summarise_window
from driftgate.proxy.serve.protocol import Reply
from driftgate.proxy.serve.request import Request
from driftgate.proxy.serve.response import Response, StreamResponse

KEEPALIVE_SECONDS = 15.0
STREAM_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}


class ObserveRoutes:
    """Handlers over one app's Observer; the gateway key (when set) guards them like the API."""

    def __init__(self, observer: Observer, key: GatewayKey) -> None:
        self.observer = observer
        self.key = key

    async def metrics(self, request: Request) -> Reply:
        """GET /metrics: the Prometheus text format."""
        self.key.check(request.headers)
        if self.observer.metrics is None:
            raise GatewayError("metrics are off ([metrics] enabled = false)", status=404)
        body = self.observer.metrics.render()
        return Response(body=body, headers={"content-type": CONTENT_TYPE})

    async def analytics(self, request: Request) -> Reply:
        """GET /analytics?window=60m: totals per model, backend, client and session."""
        self.key.check(request.headers)
        self._need_analytics()
        try:
            seconds = parse_window(request.query.get("window", "60m"))
        except BadWindow as exc:
            raise InvalidRequest(str(exc)) from None
        until = time.time()
        since = until - seconds
        recorder, database = self.observer.recorder, self.observer.database
        summary: Summary | None
        if database is not None:  # every gateway's minutes, read on the writer's own loop
            try:
                summary = await database.summary(since, until)
            except Exception as exc:  # the database is down: say so, in the client's dialect
                raise GatewayError(
                    f"the analytics database {database.shown} cannot be read now "
                    f"({reason(exc)}); records are buffered meanwhile",
                    status=503,
                ) from None
        else:  # off the loop: a long window reads many rows
            summary = await asyncio.to_thread(
                recorder.query, lambda conn: summarise_window(conn, since, until), None
            )
        doc = summary.as_json() if summary is not None else {}
        doc["recorder"] = {"backlog": recorder.backlog, "dropped": recorder.dropped}
        if database is not None:
            doc["database"] = database.state()
        return Response(body=orjson.dumps(doc), content_type="application/json")

    def _need_analytics(self) -> None:
        if not self.observer.config.analytics.enabled:
            raise GatewayError("analytics are off ([analytics] enabled = false)", status=404)

    async def stream(self, request: Request) -> Reply:
        """GET /analytics/stream: one `record` event per finished request, as it is recorded."""
        self.key.check(request.headers)
        self._need_analytics()
        hub = self.observer.live
        resp = StreamResponse(headers=STREAM_HEADERS)
        if self.observer.live_file is not None:
            return await self._every_worker(request, resp, self.observer.live_file)
        await resp.prepare(request)
        sub = hub.subscribe()
        try:
            await resp.write(b": driftgate analytics stream\n\n")
            while not sub.closed:
                docs = await sub.take(KEEPALIVE_SECONDS)
                if docs:
                    await resp.write(
                        b"".join(b"event: record\ndata: " + orjson.dumps(d) + b"\n\n" for d in docs)
                    )
                elif not sub.overflowed and not sub.closed:
                    await resp.write(b": keep-alive\n\n")
                if sub.overflowed:
                    note = {"reason": "this client fell behind; reconnect to follow again"}
                    await resp.write(b"event: dropped\ndata: " + orjson.dumps(note) + b"\n\n")
                    break
            await resp.write_eof()
        except ConnectionError:
            pass  # the client left
        finally:
            hub.unsubscribe(sub)
        return resp

    async def _every_worker(self, request: Request, resp: StreamResponse, path: Path) -> Reply:
        """/analytics/stream with N workers: every worker's records, from the usage file."""
        tail = UsageTail(path)
        try:
            await asyncio.to_thread(tail.open)
        except sqlite3.Error as exc:
            tail.close()
            raise GatewayError(f"the usage file cannot be read: {exc}", status=503) from None
        await resp.prepare(request)
        sub = self.observer.live.subscribe(fed=False)  # only to end with the app
        quiet = 0.0
        try:
            await resp.write(b": driftgate analytics stream (every worker)\n\n")
            while not sub.closed:
                docs = await asyncio.to_thread(tail.take)
                if docs:
                    quiet = 0.0
                    await resp.write(
                        b"".join(b"event: record\ndata: " + orjson.dumps(d) + b"\n\n" for d in docs)
                    )
                    if len(docs) == BATCH:
                        continue  # behind: read on at once
                elif quiet >= KEEPALIVE_SECONDS:
                    quiet = 0.0
                    await resp.write(b": keep-alive\n\n")
                await sub.take(POLL_SECONDS)  # the poll interval, cut short by the shutdown
                quiet += POLL_SECONDS
            await resp.write_eof()
        except ConnectionError:
            pass  # the client left
        finally:
            self.observer.live.unsubscribe(sub)
            await asyncio.to_thread(tail.close)
        return resp
