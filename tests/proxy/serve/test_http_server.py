"""The gateway's own HTTP/1.1 server, over raw sockets: pipelining, HTTP/1.0, Expect, HEAD,
chunked and compressed request bodies; each answer checked as a client would read it."""

from __future__ import annotations

import gzip
import socket
import zlib
from typing import Any

import httpx
import orjson

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.proxy.serve.raw_http import BOUND, connect, read_to_eof, split

MODEL = "claude-sonnet-4-6"


def message(text: str) -> bytes:
    body = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": text}]}
    return orjson.dumps(body)


def post(body: bytes, *extra: str, path: str = "/v1/messages") -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: gw", "Content-Type: application/json", *extra]
    if not any(h.lower().startswith("transfer-encoding") for h in extra):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def read_answers(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """`count` whole answers with Content-Length, in the order they arrive."""
    sock.settimeout(BOUND)
    buf = b""
    out: list[tuple[int, dict[str, str], bytes]] = []
    while len(out) < count:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            status, headers, _ = split(buf[: end + 4])
            size = int(headers["content-length"])
            if len(buf) >= end + 4 + size:
                out.append((status, headers, buf[end + 4 : end + 4 + size]))
                buf = buf[end + 4 + size :]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"closed after {len(out)} answers"
        buf += chunk
    return out


def test_pipelined_requests_are_answered_in_order(
    gateway: Any, fake_anthropic: FakeAnthropic
) -> None:
    with connect(gateway) as sock:
        sock.sendall(
            b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n"
            + post(message("first"))
            + b"GET /v2/nowhere HTTP/1.1\r\nHost: gw\r\n\r\n"
            + post(message("second"))
        )
        answers = read_answers(sock, 4)
    assert [a[0] for a in answers] == [200, 200, 404, 200]
    assert orjson.loads(answers[0][2])["status"] == "ok"
    assert orjson.loads(answers[1][2])["type"] == "message"
    assert "/v2/nowhere" in orjson.loads(answers[2][2])["error"]["message"]
    sent = [r.json["messages"][0]["content"] for r in fake_anthropic.requests[-2:]]
    assert sent == ["first", "second"]


def test_an_http_1_0_request_is_answered_and_the_connection_closed(gateway: Any) -> None:
    with connect(gateway) as sock:
        sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        received, _ = read_to_eof(sock)
    status, headers, body = split(received)
    assert status == 200 and headers["connection"] == "close"
    assert body["status"] == "ok"


def test_an_http_1_0_stream_ends_with_the_close_not_chunks(gateway: Any) -> None:
    body = orjson.loads(message("hi")) | {"stream": True}
    raw = orjson.dumps(body)
    with connect(gateway) as sock:
        sock.sendall(
            b"POST /v1/messages HTTP/1.0\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(raw), raw)
        )
        received, _ = read_to_eof(sock)
    head, _, events = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding" not in head.lower()
    assert events.startswith(b"event: message_start") and b"event: message_stop" in events


def test_expect_100_continue_is_answered_before_the_body_is_sent(gateway: Any) -> None:
    body = message("after the continue")
    with connect(gateway) as sock:
        head, _, _ = post(body, "Expect: 100-continue").partition(b"\r\n\r\n")
        sock.sendall(head + b"\r\n\r\n")
        sock.settimeout(BOUND)
        interim = sock.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        [(status, _, answer)] = read_answers(sock, 1)
    assert status == 200 and orjson.loads(answer)["type"] == "message"


def test_a_chunked_request_body_in_pieces_is_read_whole(
    gateway: Any, fake_anthropic: FakeAnthropic
) -> None:
    body = message("sent in chunks")
    pieces = [body[:10], body[10:25], body[25:]]
    with connect(gateway) as sock:
        sock.sendall(post(b"", "Transfer-Encoding: chunked"))
        for piece in pieces:
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        sock.sendall(b"0\r\n\r\n")
        [(status, _, _)] = read_answers(sock, 1)
    assert status == 200
    assert fake_anthropic.requests[-1].json["messages"][0]["content"] == "sent in chunks"


def test_gzip_and_deflate_request_bodies_are_inflated(
    gateway: Any, fake_anthropic: FakeAnthropic
) -> None:
    for encoding, text, packed in (
        ("gzip", "gzipped", gzip.compress(message("gzipped"))),
        ("deflate", "deflated", zlib.compress(message("deflated"))),
    ):
        resp = httpx.post(
            f"{gateway.url}/v1/messages",
            content=packed,
            headers={"content-type": "application/json", "content-encoding": encoding},
        )
        assert resp.status_code == 200, resp.text
        assert fake_anthropic.requests[-1].json["messages"][0]["content"] == text


def test_a_body_in_an_unknown_encoding_or_inflating_past_the_limit_is_refused(
    gateway_factory: Any, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic], max_body_bytes=4096)
    seen = len(fake_anthropic.requests)
    odd = httpx.post(
        f"{gw.url}/v1/messages",
        content=message("x"),
        headers={"content-type": "application/json", "content-encoding": "zstd"},
    )
    assert odd.status_code == 400 and odd.json()["type"] == "error"
    assert "zstd" in odd.json()["error"]["message"]
    bomb = gzip.compress(b" " * 1_000_000)  # ~1 KB on the wire, 1 MB inflated
    big = httpx.post(
        f"{gw.url}/v1/messages",
        content=bomb,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert big.status_code == 413 and big.json()["error"]["type"] == "request_too_large"
    torn = httpx.post(
        f"{gw.url}/v1/messages",
        content=gzip.compress(message("x"))[:-12],
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert torn.status_code == 400 and "ends early" in torn.json()["error"]["message"]
    assert len(fake_anthropic.requests) == seen  # none of them went upstream


def test_head_gets_the_headers_of_get_and_no_body(gateway: Any) -> None:
    with connect(gateway) as sock:
        sock.sendall(
            b"HEAD /health HTTP/1.1\r\nHost: gw\r\n\r\nGET /health HTTP/1.1\r\nHost: gw\r\n\r\n"
        )
        sock.settimeout(BOUND)
        buf = b""
        while buf.count(b"HTTP/1.1 200") < 2 or not buf.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk
            buf += chunk
    first, second = buf.split(b"HTTP/1.1 200", 2)[1:]
    head_only = first.partition(b"\r\n\r\n")
    assert head_only[2] == b""  # no body after HEAD's headers: the next bytes are GET's answer
    assert int(split(b"HTTP/1.1 200" + head_only[0] + b"\r\n\r\n")[1]["content-length"]) > 0
    assert orjson.loads(second.partition(b"\r\n\r\n")[2])["status"] == "ok"


def test_a_handler_that_fails_outside_the_app_guard_still_gets_a_500_in_dialect() -> None:
    import asyncio

    from driftgate.proxy.serve.connections import ConnectionBook
    from driftgate.proxy.serve.listener import HttpServer, Limits
    from driftgate.proxy.serve.request import Request
    from driftgate.proxy.serve.response import Response
    from driftgate.proxy.serve.router import App

    async def broken(request: Request) -> Response:
        raise RuntimeError("a bug with a secret sk-ant-S3CRET in its message")

    async def scenario() -> bytes:
        app = App()
        app.add("POST", "/v1/messages", broken)
        server = HttpServer(app, ConnectionBook(8), Limits(5.0, 5.0, 5.0, 1 << 20))
        listener = await asyncio.get_running_loop().create_server(server.factory, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(post(message("hi")))
        received = await asyncio.wait_for(reader.read(), BOUND)  # to the close
        writer.close()
        listener.close()
        await server.close()
        return received

    received = asyncio.run(scenario())
    status, headers, body = split(received)
    assert status == 500 and headers["connection"] == "close"
    assert body["type"] == "error" and "unexpected error" in body["error"]["message"]
    assert b"S3CRET" not in received and b"Traceback" not in received


def test_a_request_asking_to_upgrade_is_answered_over_http_1_1_with_its_body(
    gateway: Any, fake_anthropic: FakeAnthropic
) -> None:
    body = message("after an h2c upgrade ask")
    ask = (
        "Connection: Upgrade, HTTP2-Settings",
        "Upgrade: h2c",
        "HTTP2-Settings: AAMAAABkAAQAAP__",
    )
    with connect(gateway) as sock:
        sock.sendall(post(body, *ask) + post(message("next on the same connection")))
        answers = read_answers(sock, 2)
    assert [a[0] for a in answers] == [200, 200]
    sent = fake_anthropic.requests[-2:]
    assert [r.json["messages"][0]["content"] for r in sent] == [
        "after an h2c upgrade ask",
        "next on the same connection",
    ]
    assert "upgrade" not in sent[0].headers and "http2-settings" not in sent[0].headers


def test_connect_is_refused_in_json(gateway: Any) -> None:
    with connect(gateway) as sock:
        sock.sendall(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        received, _ = read_to_eof(sock)
    status, _, body = split(received)
    assert status == 400 and "not a forward proxy" in body["error"]["message"]
