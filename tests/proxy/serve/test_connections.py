"""Client connections, with real sockets: head and body deadlines, the idle limit, the cap."""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from driftgate.proxy.serve.connections import ConnectionBook, ensure_fd_limit
from tests.proxy.serve.raw_http import BOUND, connect, read_to_eof, split

Factory = Callable[..., Any]
HEAD = b"POST /v1/messages HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"


def test_slowloris_is_cut_at_the_head_deadline_with_a_408_in_its_dialect(
    gateway_factory: Factory,
) -> None:
    gw = gateway_factory(head_timeout=0.5, idle_timeout=60.0)
    with connect(gw) as sock:
        started = time.monotonic()
        sock.sendall(HEAD + b"X-Slow: ")
        received = b""
        # One header byte at a time until the server answers or closes; never a complete head.
        while time.monotonic() - started < BOUND:
            ready, _, _ = select.select([sock], [], [], 0.05)
            if ready:
                received, _ = read_to_eof(sock)
                break
            try:
                sock.send(b"a")
            except (BrokenPipeError, ConnectionResetError):
                break
        elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < BOUND
    status, headers, body = split(received)
    assert status == 408 and headers["connection"] == "close"
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "head_timeout" in body["error"]["message"]
    assert httpx.get(gw.url + "/health").json()["connections"]["head_timeouts"] == 1


def test_the_head_deadline_holds_for_the_next_request_on_a_kept_alive_connection(
    gateway_factory: Factory,
) -> None:
    gw = gateway_factory(head_timeout=0.5, idle_timeout=60.0)
    with connect(gw) as sock:
        for _ in range(2):  # answered requests do not start the deadline of the next
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n")  # and no more
        received, _ = read_to_eof(sock)
        elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < BOUND
    status, _, body = split(received)
    assert status == 408 and body["error"]["code"] == "request_timeout"


def test_an_idle_connection_is_closed_after_the_idle_limit(gateway_factory: Factory) -> None:
    gw = gateway_factory(idle_timeout=0.5, head_timeout=60.0)
    with connect(gw) as sock:  # connected, never sends a byte
        received, elapsed = read_to_eof(sock)
    assert received == b"" and 0.45 <= elapsed < BOUND  # closed, not answered

    with connect(gw) as sock:  # idle after a request on a kept-alive connection
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n")
        received, elapsed = read_to_eof(sock)
    status, headers, body = split(received)
    assert status == 200 and body["status"] == "no_backends"
    assert headers.get("connection") != "close"
    assert 0.45 <= elapsed < BOUND


def test_the_deadline_sweep_stops_with_the_last_connection_and_starts_with_the_next(
    gateway_factory: Factory,
) -> None:
    """An idle gateway with no connection does not wake to sweep none; a new connection is swept."""
    gw = gateway_factory(idle_timeout=0.4, head_timeout=60.0)
    server = gw._serving.server
    assert server._sweeper is None  # no connection yet
    with connect(gw) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        assert server._sweeper is not None
    deadline = time.monotonic() + BOUND
    while server.connections or server._sweeper is not None:  # closed by the client
        assert time.monotonic() < deadline, "the sweep went on with no connection"
        time.sleep(0.02)
    with connect(gw) as sock:  # swept again: closed at the idle limit
        received, elapsed = read_to_eof(sock)
    assert received == b"" and 0.35 <= elapsed < BOUND


def test_a_body_that_does_not_arrive_is_cut_at_the_body_deadline(
    gateway_factory: Factory,
) -> None:
    gw = gateway_factory(body_timeout=0.5, head_timeout=60.0, idle_timeout=60.0)
    with connect(gw) as sock:
        sock.sendall(HEAD + b"Content-Length: 10485760\r\n\r\n" + b'{"pad":"' + b"x" * 1024)
        received, elapsed = read_to_eof(sock)
    assert 0.45 <= elapsed < BOUND
    status, headers, body = split(received)
    assert status == 408 and headers["connection"] == "close"
    assert body["error"]["type"] == "invalid_request_error"
    assert "body_timeout" in body["error"]["message"]


def test_the_connection_cap_refuses_with_one_log_line_and_lifts(
    gateway_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    gw = gateway_factory(max_connections=3, idle_timeout=60.0, head_timeout=60.0)
    held = [connect(gw) for _ in range(3)]
    try:
        # Each held connection has sent a request, so all three are counted before we go on.
        for sock in held:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        with caplog.at_level(logging.WARNING, logger="driftgate.connections"):
            for path, shape in (("/v1/chat/completions", "openai"), ("/v1/messages", "anthropic")):
                with connect(gw) as sock:
                    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: gw\r\n\r\n".encode())
                    received, _ = read_to_eof(sock)
                status, headers, body = split(received)
                assert status == 503 and headers["retry-after"] == "1"
                if shape == "anthropic":
                    assert body["error"]["type"] == "overloaded_error"
                else:
                    assert body["error"]["code"] == "service_unavailable"
                assert "max_connections" in (body["error"]["message"])
            with connect(gw) as sock:  # one that never sends still gets its answer
                received, _ = read_to_eof(sock)
            assert split(received)[0] == 503
        full = [r for r in caplog.records if "the cap" in r.getMessage()]
        assert len(full) == 1  # once, not per refused connection
    finally:
        for sock in held:
            sock.close()
    # The held ones are gone: a new connection is served again (once the server saw them close).
    deadline = time.monotonic() + BOUND
    while True:
        r = httpx.get(gw.url + "/health", headers={"connection": "close"})
        if r.status_code == 200 or time.monotonic() > deadline:
            break
    assert r.status_code == 200
    assert r.json()["connections"]["refused"] == 3


def test_the_book_counts_and_reports_fullness_once() -> None:
    book = ConnectionBook(2)
    assert book.admit() and book.admit() and not book.admit() and not book.admit()
    assert book.snapshot()["refused"] == 2 and book.open == 2
    book.closed()
    assert book.admit()


def test_the_open_files_limit_is_checked_against_the_cap() -> None:
    assert ensure_fd_limit(1) is None
    warning = ensure_fd_limit(10**12)  # more than any hard limit
    assert warning is not None and "ulimit -n" in warning and "max_connections" in warning
