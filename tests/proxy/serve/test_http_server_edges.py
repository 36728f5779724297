"""The gateway's HTTP/1.1 server at its edges, over raw sockets: a malformed request behind valid
pipelined ones, a body whose framing breaks while it is read, the server's own read pause, HEAD
on a stream, non-ASCII upstream headers, HTTP/1.0 keep-alive, absolute-form targets."""

from __future__ import annotations

import gzip
import socket
import time
import zlib
from typing import Any

import orjson

from tests.fakes import Behaviour
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.proxy.serve.raw_http import BOUND, connect, read_to_eof, split
from tests.proxy.serve.test_http_server import message, post, read_answers

HEALTH = b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n"


def read_for(sock: socket.socket, seconds: float) -> bytes:
    """What arrives within `seconds` (or until the server closes)."""
    sock.settimeout(0.2)
    out = b""
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        out += chunk
    return out


def test_a_malformed_request_behind_valid_pipelined_ones_is_answered_last(gateway: Any) -> None:
    with connect(gateway) as sock:
        sock.sendall(
            HEALTH
            + b"GET /v1/models HTTP/1.1\r\nHost: gw\r\n\r\n"
            + b"GET /nope HTTP/1.1\r\nHost: gw\r\n\r\n"
            + b"BROKEN\x01 / HTTP/1.1\r\n\r\n"
        )
        received, _ = read_to_eof(sock)
    statuses = [int(part[:3]) for part in received.split(b"HTTP/1.1 ")[1:]]
    assert statuses == [200, 200, 404, 400]


def test_a_body_whose_chunking_breaks_while_read_gets_one_400_at_once(
    gateway_factory: Any, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic], body_timeout=30.0)
    with connect(gw) as sock:
        sock.sendall(post(b"", "Transfer-Encoding: chunked") + b'5\r\n{"mod\r\n')
        time.sleep(0.3)  # the handler is waiting for the rest of the body now
        sock.sendall(b"zz\r\nnot a chunk\r\n")
        received, took = read_to_eof(sock)
    assert took < BOUND / 2 and received.count(b"HTTP/1.1 ") == 1
    status, _, body = split(received)
    assert status == 400 and "Transfer-Encoding" in body["error"]["message"]


def test_the_servers_own_read_pause_never_counts_against_the_clients_head(
    gateway_factory: Any, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic], head_timeout=0.5)
    fake_anthropic.script(Behaviour.stall(2.0))  # the first answer takes 2 s: reading pauses
    with connect(gw) as sock:
        sock.sendall(post(message("slow")) + HEALTH * 9 + HEALTH[:20])
        time.sleep(0.1)
        sock.sendall(HEALTH[20:])
        answers = read_answers(sock, 11)
    assert [a[0] for a in answers] == [200] * 11


def test_head_on_a_stream_sends_the_head_only_and_keeps_the_connection(gateway: Any) -> None:
    with connect(gateway) as sock:
        sock.sendall(b"HEAD /analytics/stream HTTP/1.1\r\nHost: gw\r\n\r\n" + HEALTH)
        received = read_for(sock, 1.5)
    first, _, rest = received.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200") and b"text/event-stream" in first
    assert rest.startswith(b"HTTP/1.1 200")  # no body bytes before the next answer
    assert orjson.loads(rest.partition(b"\r\n\r\n")[2])["status"] == "ok"


def test_an_upstream_header_that_is_not_ascii_reaches_the_client_as_sent(
    gateway: Any, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(Behaviour.status(400, headers={"request-id": "caf\u00e9"}))
    with connect(gateway) as sock:
        sock.sendall(post(message("hi")))
        [(status, _, _)] = read_answers(sock, 1)
        sock.sendall(HEALTH)  # the connection still serves
        [(after, _, _)] = read_answers(sock, 1)
    assert status == 400 and after == 200
    with connect(gateway) as sock:
        fake_anthropic.script(Behaviour.status(400, headers={"request-id": "caf\u00e9"}))
        sock.sendall(post(message("hi")))
        received = read_for(sock, 1.0)
    assert b"request-id: caf\xc3\xa9\r\n" in received


def test_an_http_1_0_client_asking_for_keep_alive_is_told_so(gateway: Any) -> None:
    with connect(gateway) as sock:
        sock.sendall(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        [(status, headers, _)] = read_answers(sock, 1)
        sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")  # no keep-alive asked: closed after
        received, _ = read_to_eof(sock)
    assert status == 200 and headers["connection"] == "keep-alive"
    assert split(received)[1]["connection"] == "close"


def test_an_absolute_form_target_is_served_by_its_path(gateway: Any) -> None:
    with connect(gateway) as sock:
        sock.sendall(b"GET http://gw/health?probe=0 HTTP/1.1\r\nHost: gw\r\n\r\n")
        [(status, _, body)] = read_answers(sock, 1)
    assert status == 200 and orjson.loads(body)["status"] == "ok"


def test_raw_deflate_and_gzip_in_two_members_are_inflated(
    gateway: Any, fake_anthropic: FakeAnthropic
) -> None:
    whole = message("two members")
    for encoding, packed in (
        ("deflate", zlib.compress(whole)[2:-4]),  # no zlib header, as some clients send it
        ("gzip", gzip.compress(whole[:20]) + gzip.compress(whole[20:])),
    ):
        with connect(gateway) as sock:
            sock.sendall(post(packed, f"Content-Encoding: {encoding}"))
            [(status, _, body)] = read_answers(sock, 1)
        assert status == 200, body
        assert fake_anthropic.requests[-1].json["messages"][0]["content"] == "two members"


def test_an_http_1_0_expect_gets_no_interim_100(gateway: Any) -> None:
    body = message("no continue")
    with connect(gateway) as sock:
        head = (
            b"POST /v1/messages HTTP/1.0\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        sock.sendall(head)
        early = read_for(sock, 0.5)
        sock.sendall(body)
        received, _ = read_to_eof(sock)
    assert early == b"" and received.startswith(b"HTTP/1.1 200")
