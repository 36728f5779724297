"""Raw HTTP/1.1 over a socket, for what no HTTP client will send (slow heads, broken requests)."""

from __future__ import annotations

import socket
import time
from typing import Any

import orjson

BOUND = 10.0  # generous upper bound for anything the server must do within a fraction of this


def connect(gw: Any) -> socket.socket:
    return socket.create_connection(("127.0.0.1", gw.port), timeout=BOUND)


def read_to_eof(sock: socket.socket, bound: float = BOUND) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took (fails at `bound`)."""
    started = time.monotonic()
    sock.settimeout(bound)
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return out, time.monotonic() - started


def split(raw: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, orjson.loads(body) if body else None
