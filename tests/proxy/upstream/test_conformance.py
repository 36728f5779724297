"""One suite, both transports: the fast client and aiohttp's must behave the same on the wire.

Each test runs against raw-byte servers on loopback (tests/fakes/raw_http.py) once per
transport. A difference between the two is a bug in one of them (differential testing).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest

from driftgate.proxy.config import ProxyEnv
from driftgate.proxy.upstream import make_transport
from driftgate.proxy.upstream.connection import PAUSE_ABOVE, UpstreamResponse
from driftgate.proxy.upstream.decoding import PIECE
from driftgate.proxy.upstream.dialing import AddrInfo, Resolve
from driftgate.proxy.upstream.errors import (
    UpstreamConnectError,
    UpstreamDisconnected,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamTooLarge,
    UpstreamTruncated,
)
from driftgate.proxy.upstream.settings import TransportSettings
from driftgate.proxy.upstream.transport import Response, Timeouts, Transport
from tests.fakes.raw_http import (
    CHUNKED_HEAD,
    Handler,
    Server,
    chunk,
    keep_alive,
    once,
    response,
    run,
)
from tests.fakes.server_thread import closed_port
from tests.fakes.tinyproxy import Tinyproxy
from tests.fakes.tls_files import TLSFiles

T = Timeouts(connect=1.0, total=2.0, read=1.0)
KINDS = ("fast", "aiohttp")


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """Which transport this run of the test drives."""
    return str(request.param)


@contextlib.asynccontextmanager
async def opened(kind: str, **settings: object) -> AsyncIterator[Transport]:
    transport = make_transport(replace(TransportSettings(), kind=kind, **settings))  # type: ignore[arg-type]
    try:
        yield transport
    finally:
        await transport.close()


async def post(
    t: Transport, url: str, body: bytes = b"{}", timeouts: Timeouts = T, **headers: str
) -> Response:
    return await t.post(url, body, headers, timeouts)


async def fetch(t: Transport, url: str, body: bytes = b"{}") -> bytes:
    resp = await post(t, url, body)
    try:
        return await resp.read()
    finally:
        resp.release()


def silent() -> Handler:
    async def handler(srv: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.receive(reader)
        await srv.wait_eof(reader)  # never answers

    return handler


# -- framing --------------------------------------------------------------------------------


def test_content_length_status_headers_and_body(kind: str) -> None:
    raw = response(b'{"ok":true}', "Content-Type: Application/JSON; charset=utf-8", "X-Two: a",
                   "X-Two: b", status="201 Created")  # fmt: skip

    async def scenario() -> None:
        async with Server(keep_alive(lambda _: raw)) as srv, opened(kind) as t:
            resp = await post(t, srv.url + "/v1/messages")
            assert resp.status == 201
            assert resp.content_type == "application/json"
            assert resp.headers.getall("x-two") == ["a", "b"]
            assert await resp.read() == b'{"ok":true}'
            assert resp.at_eof()
            resp.release()

    run(scenario())


def test_request_on_the_wire_is_the_same_for_both(kind: str) -> None:
    async def scenario() -> None:
        async with Server(keep_alive(lambda _: response(b"ok"))) as srv, opened(kind) as t:
            resp = await t.post(
                srv.url + "/v1/messages?beta=true",
                b'{"a":1}',
                {"content-type": "application/json", "x-api-key": "k", "anthropic-beta": "x,y"},
                T,
            )
            await resp.read()
            resp.release()
            req = srv.requests[0]
            assert req.line == "POST /v1/messages?beta=true HTTP/1.1"
            assert req.body == b'{"a":1}'
            names = sorted(n.lower() for n in req.headers)
            sent = ["host", "content-type", "x-api-key", "anthropic-beta", "content-length"]
            assert names == sorted([*sent, "accept-encoding"])
            assert req.headers["Host"] == f"127.0.0.1:{srv.port}"
            assert req.headers["Accept-Encoding"] == "identity"
            assert req.headers["Content-Length"] == "7"

    run(scenario())


def test_other_methods_on_the_wire_are_the_same_for_both(kind: str) -> None:
    """request(): a GET goes without a body or Content-Length, a bodiless DELETE with
    "Content-Length: 0", a PUT with its body; the pooled connection serves each in turn."""

    async def scenario() -> None:
        async with Server(keep_alive(lambda _: response(b"{}"))) as srv, opened(kind) as t:
            for method, body in (("GET", b""), ("DELETE", b""), ("PUT", b"a=1"), ("POST", b"x")):
                resp = await t.request(
                    method, srv.url + "/v1/files?limit=2&after=f%2F1", body, {"x-k": "v"}, T
                )
                assert await resp.read() == b"{}"
                resp.release()
            lines = [r.line for r in srv.requests]
            assert lines == [
                "GET /v1/files?limit=2&after=f%2F1 HTTP/1.1",
                "DELETE /v1/files?limit=2&after=f%2F1 HTTP/1.1",
                "PUT /v1/files?limit=2&after=f%2F1 HTTP/1.1",
                "POST /v1/files?limit=2&after=f%2F1 HTTP/1.1",
            ]
            get, delete, put, post_ = srv.requests
            assert "Content-Length" not in get.headers and get.body == b""
            assert delete.headers["Content-Length"] == "0" and delete.body == b""
            assert put.headers["Content-Length"] == "3" and put.body == b"a=1"
            assert post_.body == b"x" and get.headers["x-k"] == "v"

    run(scenario())


def test_chunked_body_is_delivered_as_it_arrives(kind: str) -> None:
    """The second chunk is only sent once the client has the first: a buffering client hangs."""
    got_first = asyncio.Event()

    async def handler(srv: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.receive(reader)
        w.write(CHUNKED_HEAD + chunk(b"event: one\n\n"))
        await w.drain()
        await got_first.wait()
        w.write(chunk(b"event: two\n\n") + b"0\r\n\r\n")
        await w.drain()
        await srv.wait_eof(reader)

    async def scenario() -> None:
        async with Server(handler) as srv, opened(kind) as t:
            resp = await post(t, srv.url + "/")
            assert resp.content_type == "text/event-stream"
            assert await resp.readany() == b"event: one\n\n"
            got_first.set()
            rest = b""
            while data := await resp.readany():
                rest += data
            assert rest == b"event: two\n\n"
            assert resp.at_eof()
            resp.release()

    run(scenario())


def test_close_delimited_body_ends_at_eof_and_the_next_request_reconnects(kind: str) -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"

    async def scenario() -> None:
        async with Server(once(raw, then_close=True)) as srv, opened(kind) as t:
            assert await fetch(t, srv.url + "/") == b"all of it"
            assert await fetch(t, srv.url + "/") == b"all of it"
            assert srv.connections == 2

    run(scenario())


def test_no_content_has_an_empty_body(kind: str) -> None:
    async def scenario() -> None:
        raw = b"HTTP/1.1 204 No Content\r\n\r\n"
        async with Server(keep_alive(lambda _: raw)) as srv, opened(kind) as t:
            assert await fetch(t, srv.url + "/") == b""
            assert await fetch(t, srv.url + "/") == b""
            assert srv.connections == 1

    run(scenario())


def test_interim_answers_are_skipped(kind: str) -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\n" + response(b"final")

    async def scenario() -> None:
        async with Server(keep_alive(lambda _: raw)) as srv, opened(kind) as t:
            resp = await post(t, srv.url + "/")
            assert resp.status == 200
            assert await resp.read() == b"final"
            resp.release()

    run(scenario())


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_gzip_body_sent_anyway_is_decompressed(kind: str, framing: str) -> None:
    packed = gzip.compress(b'{"hello":"world"}' * 100)
    if framing == "length":
        raw = response(packed, "Content-Encoding: gzip")
    else:
        head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        raw = head + chunk(packed[:10]) + chunk(packed[10:]) + b"0\r\n\r\n"

    async def scenario() -> None:
        async with Server(keep_alive(lambda _: raw)) as srv, opened(kind) as t:
            assert await fetch(t, srv.url + "/") == b'{"hello":"world"}' * 100

    run(scenario())


# -- keep-alive -----------------------------------------------------------------------------


def test_sequential_requests_share_one_connection(kind: str) -> None:
    async def scenario() -> None:
        async with Server(keep_alive(lambda r: response(r.body))) as srv, opened(kind) as t:
            for body in (b"a", b"b", b"c"):
                assert await fetch(t, srv.url + "/", body) == body
            assert srv.connections == 1

    run(scenario())


def test_connection_close_answer_is_not_reused(kind: str) -> None:
    raw = response(b"bye", "Connection: close")

    async def scenario() -> None:
        async with Server(keep_alive(lambda _: raw)) as srv, opened(kind) as t:
            assert await fetch(t, srv.url + "/") == b"bye"
            assert await fetch(t, srv.url + "/") == b"bye"
            assert srv.connections == 2

    run(scenario())


def test_connection_the_server_closed_while_idle_is_not_reused(kind: str) -> None:
    async def handler(srv: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.receive(reader)
        w.write(response(b"ok"))  # keep-alive by default, then closed anyway: an idle timeout
        await w.drain()
        w.close()
        srv.disconnected.set()

    async def scenario() -> None:
        async with Server(handler) as srv, opened(kind) as t:
            assert await fetch(t, srv.url + "/") == b"ok"
            await srv.disconnected.wait()
            await asyncio.sleep(0.05)  # the FIN reaches the client's event loop
            assert await fetch(t, srv.url + "/") == b"ok"
            assert srv.connections == 2

    run(scenario())


def test_release_before_the_body_ended_closes_instead_of_pooling(kind: str) -> None:
    async def handler(srv: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if await srv.receive(reader) is None:
            return
        w.write(CHUNKED_HEAD + chunk(b"partial"))
        await w.drain()
        await srv.wait_eof(reader)

    async def scenario() -> None:
        async with Server(handler) as srv, opened(kind) as t:
            resp = await post(t, srv.url + "/")
            assert await resp.readany() == b"partial"
            resp.release()
            await asyncio.wait_for(srv.disconnected.wait(), 1.0)

    run(scenario())


# -- timeouts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "timeouts",
    [Timeouts(connect=1.0, total=0.3, read=None), Timeouts(connect=1.0, total=None, read=0.3)],
    ids=["total", "read"],
)
def test_server_that_never_answers_times_out_and_is_dropped(kind: str, timeouts: Timeouts) -> None:
    async def scenario() -> None:
        async with Server(silent()) as srv, opened(kind) as t:
            with pytest.raises(UpstreamTimeout) as err:
                await post(t, srv.url + "/", timeouts=timeouts)
            assert isinstance(err.value, TimeoutError)
            await asyncio.wait_for(srv.disconnected.wait(), 1.0)

    run(scenario())


def test_read_timeout_when_the_server_stalls_mid_body(kind: str) -> None:
    async def handler(srv: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.receive(reader)
        w.write(CHUNKED_HEAD + chunk(b"first"))
        await w.drain()
        await srv.wait_eof(reader)

    async def scenario() -> None:
        async with Server(handler) as srv, opened(kind) as t:
            resp = await post(t, srv.url + "/", timeouts=Timeouts(1.0, None, 0.3))
            assert await resp.readany() == b"first"
            with pytest.raises(UpstreamTimeout):
                await resp.readany()
            resp.close()
            await asyncio.wait_for(srv.disconnected.wait(), 1.0)

    run(scenario())


def test_total_timeout_bounds_a_body_that_keeps_trickling(kind: str) -> None:
    async def handler(srv: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.receive(reader)
        w.write(CHUNKED_HEAD)
        while True:
            w.write(chunk(b"."))
            await w.drain()
            await asyncio.sleep(0.02)

    async def scenario() -> None:
        async with Server(handler) as srv, opened(kind) as t:
            resp = await post(t, srv.url + "/", timeouts=Timeouts(1.0, 0.4, 1.0))
            got = b""
            with pytest.raises(UpstreamTimeout):
                while data := await resp.readany():
                    got += data
            assert got  # the body flowed; only the overall bound stopped it
            resp.close()

    run(scenario())


@pytest.mark.parametrize(
    "timeouts", [Timeouts(0.3, None, None), Timeouts(60.0, 0.3, None)], ids=["connect", "total"]
)
def test_tls_handshake_that_never_completes_times_out(kind: str, timeouts: Timeouts) -> None:
    async def mute(srv: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.wait_eof(reader)  # plain TCP: the ClientHello is never answered

    async def scenario() -> None:
        async with Server(mute) as srv, opened(kind) as t:
            with pytest.raises(UpstreamTimeout):
                await post(t, f"https://127.0.0.1:{srv.port}/", timeouts=timeouts)

    run(scenario())


# -- TLS ------------------------------------------------------------------------------------


def test_https_to_a_server_signed_by_the_ca_bundle(kind: str, tls: TLSFiles) -> None:
    async def scenario() -> None:
        handler = keep_alive(lambda r: response(b"tls:" + r.body))
        async with (
            Server(handler, tls.server_context()) as srv,
            opened(kind, ca_bundle=tls.ca) as t,
        ):
            for body in (b"a", b"b"):
                assert await fetch(t, srv.url + "/", body) == b"tls:" + body
            assert srv.connections == 1

    run(scenario())


@pytest.mark.parametrize("which", ["self_signed", "wrong_host"])
def test_https_to_an_untrusted_or_misnamed_server_is_refused(
    kind: str, tls: TLSFiles, which: str
) -> None:
    async def scenario() -> None:
        handler = keep_alive(lambda _: response(b"ok"))
        async with (
            Server(handler, tls.server_context(which)) as srv,
            opened(kind, ca_bundle=tls.ca) as t,
        ):
            with pytest.raises(UpstreamConnectError):
                await post(t, srv.url + "/")
            assert srv.requests == []

    run(scenario())


# -- errors ---------------------------------------------------------------------------------


def test_connection_refused(kind: str) -> None:
    async def scenario() -> None:
        async with opened(kind) as t:
            with pytest.raises(UpstreamConnectError):
                await post(t, f"http://127.0.0.1:{closed_port()}/")

    run(scenario())


@pytest.mark.parametrize(
    "sent", [b"", b"HTTP/1.1 200 OK\r\nContent-Le"], ids=["nothing", "half-head"]
)
def test_closed_before_a_complete_head_is_disconnected(kind: str, sent: bytes) -> None:
    async def scenario() -> None:
        async with Server(once(sent, then_close=True)) as srv, opened(kind) as t:
            with pytest.raises(UpstreamDisconnected) as err:
                await post(t, srv.url + "/")
            assert not isinstance(err.value, UpstreamTruncated)

    run(scenario())


def test_reset_before_the_answer_is_disconnected(kind: str) -> None:
    async def handler(srv: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.receive(reader)
        w.transport.abort()  # an RST, not a FIN

    async def scenario() -> None:
        async with Server(handler) as srv, opened(kind) as t:
            with pytest.raises(UpstreamDisconnected):
                await post(t, srv.url + "/")

    run(scenario())


@pytest.mark.parametrize(
    "sent",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nonly5",
        CHUNKED_HEAD + chunk(b"data: 1\n\n"),
    ],
    ids=["content-length", "chunked"],
)
@pytest.mark.parametrize("method", ["read", "readany"])
def test_body_cut_short_is_truncated(kind: str, sent: bytes, method: str) -> None:
    async def scenario() -> None:
        async with Server(once(sent, then_close=True)) as srv, opened(kind) as t:
            resp = await post(t, srv.url + "/")
            with pytest.raises(UpstreamTruncated):
                while await getattr(resp, method)():
                    pass
            resp.close()

    run(scenario())


@pytest.mark.parametrize(
    "sent",
    [
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
    ],
    ids=["not-http", "bad-status", "bad-length"],
)
def test_malformed_answer_is_a_protocol_error(kind: str, sent: bytes) -> None:
    async def scenario() -> None:
        async with Server(once(sent)) as srv, opened(kind) as t:
            with pytest.raises(UpstreamProtocolError):
                await post(t, srv.url + "/")

    run(scenario())


def test_switching_protocols_is_a_protocol_error_and_the_connection_is_dropped(kind: str) -> None:
    raw = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello"

    async def scenario() -> None:
        async with Server(once(raw)) as srv, opened(kind) as t:
            with pytest.raises(UpstreamProtocolError):
                await post(t, srv.url + "/")
            await asyncio.wait_for(srv.disconnected.wait(), 1.0)

    run(scenario())


@pytest.mark.parametrize("method", ["read", "readany"])
def test_truncated_gzip_body_is_truncated_not_short(kind: str, method: str) -> None:
    packed = gzip.compress(b"x" * 5000 + bytes(range(256)) * 40)
    cut = packed[: len(packed) // 2]
    raw = response(cut, "Content-Encoding: gzip")

    async def scenario() -> None:
        async with Server(keep_alive(lambda _: raw)) as srv, opened(kind) as t:
            resp = await post(t, srv.url + "/")
            with pytest.raises(UpstreamTruncated):
                while await getattr(resp, method)():
                    pass
            resp.close()

    run(scenario())


def test_header_with_a_line_break_is_refused_before_sending(kind: str) -> None:
    async def scenario() -> None:
        async with Server(keep_alive(lambda _: response(b"ok"))) as srv, opened(kind) as t:
            with pytest.raises(ValueError):
                await t.post(srv.url + "/", b"{}", {"x-evil": "a\r\nx-injected: 1"}, T)
            assert srv.requests == []

    run(scenario())


def test_every_failure_is_an_upstream_error(kind: str) -> None:
    async def scenario() -> None:
        async with opened(kind) as t:
            for url in (f"http://127.0.0.1:{closed_port()}/", "http://user:pw@127.0.0.1:1/"):
                with pytest.raises(UpstreamError):
                    await post(t, url)

    run(scenario())


# -- cancellation and dirty connections ------------------------------------------------------


def test_client_gone_mid_stream_closes_the_upstream_connection(kind: str) -> None:
    async def handler(srv: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if await srv.receive(reader) is None:
            return
        w.write(CHUNKED_HEAD + chunk(b"data: 1\n\n"))
        await w.drain()
        await srv.wait_eof(reader)

    async def scenario() -> None:
        async with Server(handler) as srv, opened(kind) as t:
            resp = await post(t, srv.url + "/")
            assert await resp.readany() == b"data: 1\n\n"
            reader = asyncio.create_task(resp.readany())
            await asyncio.sleep(0.05)
            reader.cancel()  # the relay's task is cancelled when its client hangs up
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            resp.close()
            await asyncio.wait_for(srv.disconnected.wait(), 1.0)
            srv.disconnected.clear()
            second = await post(t, srv.url + "/")  # a fresh connection, not the abandoned one
            assert await second.readany() == b"data: 1\n\n"
            second.close()
            assert srv.connections == 2

    run(scenario())


def test_cancelled_while_waiting_for_the_head_drops_the_connection(kind: str) -> None:
    async def scenario() -> None:
        async with Server(silent()) as srv, opened(kind) as t:
            task = asyncio.create_task(post(t, srv.url + "/", timeouts=Timeouts(1.0, None, None)))
            while not srv.requests:
                await asyncio.sleep(0.01)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.wait_for(srv.disconnected.wait(), 1.0)

    run(scenario())


def test_answer_before_the_request_body_was_sent_does_not_reuse_the_connection(kind: str) -> None:
    """A server that answers (413, say) without reading a large body: the rest is never sent."""

    async def handler(srv: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the head only; the body stays unread
        srv.requests.append(None)  # type: ignore[arg-type]
        w.write(response(b"too big", status="413 Payload Too Large"))
        await w.drain()
        await srv.wait_eof(reader)

    async def scenario() -> None:
        async with Server(handler) as srv, opened(kind) as t:
            big = b"x" * (32 << 20)  # more than the socket buffers hold
            resp = await post(t, srv.url + "/", big)
            assert resp.status == 413
            assert await resp.read() == b"too big"
            resp.release()
            resp2 = await post(t, srv.url + "/", b"{}")
            assert resp2.status == 413
            resp2.close()
            assert srv.connections == 2

    run(scenario())


# -- forward proxies (a real tinyproxy on loopback) ----------------------------------------


def test_http_target_goes_through_http_proxy_in_absolute_form(
    kind: str, tinyproxy: Tinyproxy
) -> None:
    async def scenario() -> None:
        proxies = ProxyEnv(http=tinyproxy.url())
        async with (
            Server(keep_alive(lambda r: response(b"via:" + r.body))) as srv,
            opened(kind, proxies=proxies) as t,
        ):
            assert await fetch(t, srv.url + "/v1/messages?beta=true", b"x") == b"via:x"
            seen = srv.requests[0]
            assert "tinyproxy" in seen.headers.get("Via", "")  # it did pass the proxy
            assert seen.line.startswith("POST /v1/messages?beta=true ")

    run(scenario())


def test_https_target_goes_through_a_connect_tunnel(
    kind: str, tinyproxy: Tinyproxy, tls: TLSFiles
) -> None:
    async def scenario() -> None:
        proxies = ProxyEnv(https=tinyproxy.url())
        handler = keep_alive(lambda r: response(b"tunnel:" + r.body))
        async with (
            Server(handler, tls.server_context()) as srv,
            opened(kind, proxies=proxies, ca_bundle=tls.ca) as t,
        ):
            for body in (b"a", b"b"):
                assert await fetch(t, srv.url + "/", body) == b"tunnel:" + body
            assert srv.connections == 1  # the tunnel is kept alive like any connection
            assert f"CONNECT 127.0.0.1:{srv.port}" in tinyproxy.logged()
            assert "Via" not in srv.requests[0].headers  # end-to-end TLS: the proxy saw nothing

    run(scenario())


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_proxy_credentials_come_from_the_proxy_url(
    kind: str, tinyproxy_auth: Tinyproxy, tls: TLSFiles, scheme: str
) -> None:
    async def scenario() -> None:
        server_tls = tls.server_context() if scheme == "https" else None
        handler = keep_alive(lambda _: response(b"ok"))
        async with Server(handler, server_tls) as srv:
            for creds, ok in ((True, True), (False, False)):
                url = tinyproxy_auth.url(with_credentials=creds)
                proxies = ProxyEnv(http=url, https=url)
                async with opened(kind, proxies=proxies, ca_bundle=tls.ca) as t:
                    if ok:
                        assert await fetch(t, srv.url + "/") == b"ok"
                        continue
                    with pytest.raises(UpstreamConnectError) as err:
                        await post(t, srv.url + "/")
                    assert "407" in str(err.value)
            assert len(srv.requests) == 1
            for request in srv.requests:
                assert "Proxy-Authorization" not in request.headers  # spent at the proxy

    run(scenario())


def test_proxy_password_never_appears_in_an_error(kind: str) -> None:
    async def scenario() -> None:
        proxy = f"http://gateway:pr0xy-s3cret@127.0.0.1:{closed_port()}"
        async with opened(kind, proxies=ProxyEnv(http=proxy, https=proxy)) as t:
            for url in ("http://127.0.0.1:9/", "https://127.0.0.1:9/"):
                with pytest.raises(UpstreamConnectError) as err:
                    await post(t, url)
                assert "pr0xy-s3cret" not in str(err.value) and "pr0xy-s3cret" not in repr(
                    err.value
                )

    run(scenario())


@pytest.mark.parametrize(
    "no_proxy", ["127.0.0.1", "127.0.0.0/8", "*", "localhost,127.0.0.1:{port}"]
)
def test_no_proxy_goes_direct(kind: str, no_proxy: str) -> None:
    async def scenario() -> None:
        dead_proxy = f"http://127.0.0.1:{closed_port()}"
        async with Server(keep_alive(lambda _: response(b"direct"))) as srv:
            proxies = ProxyEnv(http=dead_proxy, no_proxy=no_proxy.format(port=srv.port))
            async with opened(kind, proxies=proxies) as t:
                assert await fetch(t, srv.url + "/") == b"direct"
            async with opened(kind, proxies=ProxyEnv(http=dead_proxy, no_proxy="example.com")) as t:
                with pytest.raises(UpstreamConnectError):
                    await post(t, srv.url + "/")

    run(scenario())


# -- client certificates (mTLS) --------------------------------------------------------------


@pytest.mark.parametrize("files", ["cert-and-key", "combined"])
def test_client_certificate_is_presented_to_a_server_that_requires_one(
    kind: str, tls: TLSFiles, files: str
) -> None:
    async def scenario() -> None:
        if files == "combined":
            creds = {"client_cert": tls.client_combined}
        else:
            creds = {"client_cert": tls.client[0], "client_key": tls.client[1]}
        handler = keep_alive(lambda _: response(b"hello, client"))
        server_tls = tls.server_context(require_client_cert=True)
        async with (
            Server(handler, server_tls) as srv,
            opened(kind, ca_bundle=tls.ca, **creds) as t,
        ):
            assert await fetch(t, srv.url + "/") == b"hello, client"

    run(scenario())


def test_server_that_requires_a_client_certificate_refuses_a_client_without(
    kind: str, tls: TLSFiles
) -> None:
    async def scenario() -> None:
        handler = keep_alive(lambda _: response(b"never"))
        server_tls = tls.server_context(require_client_cert=True)
        async with Server(handler, server_tls) as srv, opened(kind, ca_bundle=tls.ca) as t:
            # TLS 1.3 finishes the client's side of the handshake before the server checks:
            # the refusal arrives as an alert on the first read, so it is a connect error or
            # a disconnect, never an answer
            with pytest.raises((UpstreamConnectError, UpstreamDisconnected)):
                resp = await post(t, srv.url + "/")
                await resp.read()
            assert srv.requests == []

    run(scenario())


# -- response size limit and bounded decompression --------------------------------------------

LIMIT = 1 << 20


def gzip_bomb(size: int) -> bytes:
    """`size` zero bytes, gzip-compressed (about 1000:1)."""
    out = gzip.compress(b"\0" * size, compresslevel=9)
    return out


@pytest.mark.parametrize("method", ["read", "readany"])
def test_body_over_max_response_bytes_is_cut_off(kind: str, method: str) -> None:
    raw = response(b"x" * (LIMIT + 1))

    async def scenario() -> None:
        async with (
            Server(keep_alive(lambda _: raw)) as srv,
            opened(kind, max_response_bytes=LIMIT) as t,
        ):
            resp = await post(t, srv.url + "/")
            with pytest.raises(UpstreamTooLarge) as err:
                while await getattr(resp, method)():
                    pass
            assert "max_response_bytes" in str(err.value)
            resp.close()

    run(scenario())


def test_body_of_exactly_max_response_bytes_is_whole(kind: str) -> None:
    raw = response(b"x" * LIMIT)

    async def scenario() -> None:
        async with (
            Server(keep_alive(lambda _: raw)) as srv,
            opened(kind, max_response_bytes=LIMIT) as t,
        ):
            assert len(await fetch(t, srv.url + "/")) == LIMIT

    run(scenario())


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_gzip_bomb_is_cut_off_in_bounded_pieces(kind: str, framing: str) -> None:
    """64 MiB of zeros in ~64 KiB of gzip: what is buffered stays bounded, then it stops."""
    bomb = gzip_bomb(64 << 20)
    if framing == "length":
        raw = response(bomb, "Content-Encoding: gzip", "Content-Type: text/event-stream")
    else:
        head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        raw = head + chunk(bomb) + b"0\r\n\r\n"

    async def scenario() -> None:
        async with (
            Server(keep_alive(lambda _: raw)) as srv,
            opened(kind, max_response_bytes=8 * LIMIT) as t,
        ):
            resp = await post(t, srv.url + "/")
            seen = 0
            with pytest.raises(UpstreamTooLarge):
                while data := await resp.readany():
                    assert len(data) <= PAUSE_ABOVE + PIECE  # never one huge decompressed buffer
                    seen += len(data)
            assert seen <= 8 * LIMIT
            if isinstance(resp, UpstreamResponse):
                assert resp.peak_buffered <= PAUSE_ABOVE + PIECE
            resp.close()

    run(scenario())


# -- connecting: happy eyeballs, DNS cache, per-host limit ------------------------------------


@contextlib.contextmanager
def blackhole() -> Iterator[int]:
    """A loopback port whose accept queue is full: a connect to it hangs (its SYN is dropped)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = int(srv.getsockname()[1])
    fill = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            c.connect(("127.0.0.1", port))
        fill.append(c)
    try:
        yield port
    finally:
        for c in fill:
            c.close()
        srv.close()


def fixed_resolver(ports: list[int], calls: list[str]) -> Resolve:
    async def resolve(host: str, port: int) -> list[AddrInfo]:
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", p)) for p in ports]

    return resolve


@pytest.mark.parametrize("delay", [0.1, None], ids=["happy-eyeballs", "one-at-a-time"])
def test_happy_eyeballs_tries_the_next_address_when_the_first_hangs(
    kind: str, delay: float | None
) -> None:
    async def scenario() -> None:
        with blackhole() as hole:
            async with Server(keep_alive(lambda _: response(b"second address"))) as srv:
                resolve = fixed_resolver([hole, srv.port], [])
                settings = replace(TransportSettings(), kind=kind, happy_eyeballs_delay=delay)
                t = make_transport(settings, resolve)
                try:
                    url = f"http://twin.test:{srv.port}/"
                    if delay is None:  # the first address holds the whole connect bound
                        with pytest.raises(UpstreamTimeout):
                            await post(t, url, timeouts=Timeouts(0.5, None, None))
                    else:
                        resp = await post(t, url, timeouts=Timeouts(2.0, None, None))
                        assert await resp.read() == b"second address"
                        resp.release()
                finally:
                    await t.close()

    run(scenario())


def test_dns_answers_are_reused_for_new_connections(kind: str) -> None:
    async def scenario() -> None:
        raw = response(b"ok", "Connection: close")  # every request needs a new connection
        async with Server(keep_alive(lambda _: raw)) as srv:
            calls: list[str] = []
            t = make_transport(
                replace(TransportSettings(), kind=kind), fixed_resolver([srv.port], calls)
            )
            try:
                for _ in range(3):
                    assert await fetch(t, f"http://cached.test:{srv.port}/") == b"ok"
            finally:
                await t.close()
            assert srv.connections == 3
            assert calls == ["cached.test"]

    run(scenario())


def test_per_host_limit_makes_a_request_wait_for_a_free_connection(kind: str) -> None:
    release_first = asyncio.Event()

    async def handler(srv: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while (request := await srv.receive(reader)) is not None:
            if request.body == b"first":
                w.write(CHUNKED_HEAD + chunk(b"1"))
                await w.drain()
                await release_first.wait()
                w.write(b"0\r\n\r\n")
            else:
                w.write(response(request.body))
            await w.drain()

    async def scenario() -> None:
        async with Server(handler) as srv, opened(kind, max_connections_per_host=1) as t:
            first = await post(t, srv.url + "/", b"first")
            with pytest.raises(UpstreamTimeout):  # no slot within the connect bound
                await post(t, srv.url + "/", b"second", timeouts=Timeouts(0.3, None, None))
            waiting = asyncio.create_task(fetch(t, srv.url + "/", b"third"))
            await asyncio.sleep(0.1)
            assert not waiting.done()
            release_first.set()
            assert await first.read() == b"1"
            first.release()
            assert await waiting == b"third"
            assert srv.connections == 1

    run(scenario())


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("/v1/messages?beta=true&q=a%20b&r=%C3%A9", "/v1/messages?beta=true&q=a%20b&r=%C3%A9"),
        ("/my path/v1", "/my%20path/v1"),
        ("/v1/a%2Fb?x=%2F", "/v1/a%2Fb?x=%2F"),
        ("/v1/chat?q=caf\u00e9", "/v1/chat?q=caf%C3%A9"),
    ],
    ids=["escaped-query-as-given", "space-escaped", "escaped-slash-kept", "unicode-escaped"],
)
def test_request_target_is_escaped_exactly_once(kind: str, path: str, line: str) -> None:
    async def scenario() -> None:
        async with Server(keep_alive(lambda _: response(b"ok"))) as srv, opened(kind) as t:
            assert await fetch(t, srv.url + path) == b"ok"
            assert srv.requests[0].line == f"POST {line} HTTP/1.1"

    run(scenario())


@pytest.mark.parametrize(("count", "ok"), [(200, True), (300, False)])
def test_many_response_headers_up_to_256(kind: str, count: int, ok: bool) -> None:
    raw = response(b"ok", *(f"X-H{i}: {i}" for i in range(count)))

    async def scenario() -> None:
        async with Server(once(raw)) as srv, opened(kind) as t:
            if ok:
                resp = await post(t, srv.url + "/")
                assert resp.headers["X-H199"] == "199"
                resp.close()
            else:
                with pytest.raises(UpstreamProtocolError):
                    await post(t, srv.url + "/")

    run(scenario())


def test_a_long_header_value_is_accepted(kind: str) -> None:
    long = "x" * 16000  # a long rate-limit policy or request id list, as some proxies add
    raw = response(b"ok", f"X-Long: {long}")

    async def scenario() -> None:
        async with Server(once(raw)) as srv, opened(kind) as t:
            resp = await post(t, srv.url + "/")
            assert resp.headers["X-Long"] == long
            resp.close()

    run(scenario())
