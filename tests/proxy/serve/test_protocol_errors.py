"""Requests the gateway cannot parse: JSON in the client's dialect, nothing echoed, one log line."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httptools
import pytest

from driftgate.proxy.serve.protocol import parse_error
from driftgate.proxy.serve.protocol_errors import dialect_of_head
from tests.proxy.serve.raw_http import connect, read_to_eof, split

Factory = Callable[..., Any]
MANY = b"".join(b"X-Many-%d: v\r\n" % i for i in range(10_000))


@pytest.mark.parametrize(
    ("raw", "status", "shape", "secret"),
    [
        (
            b"POST /v1/messages HTTP/1.1\r\nHost: gw\r\nX-Big: " + b"S3CRET" * 17_000 + b"\r\n\r\n",
            431,
            "anthropic",
            b"S3CRET",
        ),
        (b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n" + MANY + b"\r\n", 431, "openai",
         b"X-Many"),
        (b"GET /v1/messages HTTP/1.1\r\nX-Tag: S3CRET\r\n\r\n", 400, "anthropic", b"S3CRET"),
        (b"S3CRET /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n\r\n", 400, "openai", b"S3CRET"),
        (b"GET / HTTP/1.1\r\nHost: gw\r\nContent-Length: S3CRET\r\n\r\n", 400, "json", b"S3CRET"),
    ],
    ids=["100KB-header", "10000-headers", "no-host", "bad-request-line", "bad-content-length"],
)  # fmt: skip
def test_protocol_errors_are_json_in_dialect_never_echoed_and_logged_once(
    gateway_factory: Factory,
    caplog: pytest.LogCaptureFixture,
    raw: bytes,
    status: int,
    shape: str,
    secret: bytes,
) -> None:
    gw = gateway_factory()
    with caplog.at_level(logging.DEBUG), connect(gw) as sock:
        sock.sendall(raw)
        received, _ = read_to_eof(sock)
    got, headers, body = split(received)
    assert got == status and headers["content-type"].startswith("application/json")
    assert secret not in received
    if shape == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] in (
            "invalid_request_error",
            "request_too_large",
        )
    else:
        assert body["error"]["type"] == "invalid_request_error" and "param" in body["error"]
    assert body["error"]["message"]
    lines = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].name == "driftgate.connections" and lines[0].exc_info is None
    assert "malformed request" in lines[0].getMessage()


def test_dialect_of_head_reads_only_the_request_target() -> None:
    assert dialect_of_head(b"POST /v1/messages?beta=true HTTP/1.1\r\n") == "anthropic"
    assert dialect_of_head(b"POST /v1/messages/count_tokens HTTP/1.1") == "anthropic"
    assert dialect_of_head(b"POST /v1/chat/completions HTTP/1.1") == "openai"
    assert dialect_of_head(b"POST /v1/responses HTTP/1.1") == "responses"
    assert dialect_of_head(b"GET /health HTTP/1.1") is None
    assert dialect_of_head(b"POST /v1/mess") is None  # not all there yet
    assert dialect_of_head(b"") is None
    assert dialect_of_head(b"garbage-without-spaces" * 10) is None


@pytest.mark.parametrize(
    "raw",
    [
        b"S3CRET /v1/messages HTTP/1.1\r\nHost: gw\r\n\r\n",
        b"POST /v1/messages HTTP/9.S3CRET\r\nHost: gw\r\n\r\n",
        b"POST /v1/messages HTTP/1.1\r\nHost: gw\r\nContent-Length: S3CRET\r\n\r\n",
        b"POST /v1/messages HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\nS3CRET\r\n",
        b"POST /v1/messages HTTP/1.1\r\nHost: gw\r\nBad S3CRET Header\r\n\r\n",
        b"POST /v1/mes\x00sages HTTP/1.1\r\nHost: gw\r\n\r\n",
    ],
    ids=["method", "version", "content-length", "chunk-size", "header-line", "target"],
)
def test_protocol_error_sentences_never_quote_the_request(raw: bytes) -> None:
    parser = httptools.HttpRequestParser(object())
    with pytest.raises(httptools.HttpParserError) as caught:
        parser.feed_data(raw)
    err = parse_error(caught.value)
    assert "S3CRET" not in err.message and err.status == 400
    assert err.message.startswith(("the request", "a request"))
