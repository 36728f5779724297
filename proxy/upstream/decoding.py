"""Undo a Content-Encoding a bounded piece at a time, so a gzip bomb cannot fill memory.

Both transports use it: the compressed bytes wait as input, and each `pull` produces at
most PIECE bytes; a body that decompresses past `limit` raises UpstreamTooLarge, and one
whose compressed stream stops before its end raises UpstreamTruncated.
"""

from __future__ import annotations

import zlib

from driftgate.proxy.upstream.errors import (
    UpstreamProtocolError,
    UpstreamTooLarge,
    UpstreamTruncated,
)

PIECE = 1 << 18  # bytes of output per pull: what one read hands on, whatever the ratio
ENCODINGS = frozenset({"gzip", "x-gzip", "deflate"})


def too_large(limit: int) -> UpstreamTooLarge:
    """The error for a body past `limit` bytes (named after the setting a user can raise)."""
    return UpstreamTooLarge(
        f"the upstream's answer is larger than max_response_bytes ({limit} bytes); "
        "it was cut off there"
    )


def decoder_for(encoding: str | None, limit: int) -> BodyDecoder | None:
    """A decoder for the response's Content-Encoding; None for identity."""
    if encoding is None:
        return None
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return None
    if name not in ENCODINGS:
        raise UpstreamProtocolError(f"unsupported Content-Encoding {encoding!r}")
    return BodyDecoder(name == "deflate", limit)


class BodyDecoder:
    """gzip or zlib (detected from the header bytes), or raw deflate, with bounded output."""

    __slots__ = ("_deflate_head", "_fed", "_limit", "_pending", "_z", "produced")

    def __init__(self, deflate: bool, limit: int) -> None:
        self._z = zlib.decompressobj(47)  # gzip or zlib, told apart by their header bytes
        # deflate: the first bytes, until zlib's two-byte header or raw deflate is known
        self._deflate_head: bytes | None = b"" if deflate else None
        self._pending = b""
        self._fed = False  # an empty body with a Content-Encoding (a 204, say) is no truncation
        self._limit = limit
        self.produced = 0

    @property
    def pending(self) -> bool:
        """Compressed input is waiting to be pulled."""
        return bool(self._pending)

    def push(self, data: bytes) -> None:
        """More compressed input (arrives while earlier input may still wait)."""
        if data:
            self._fed = True
            self._pending = self._pending + data if self._pending else data

    def pull(self) -> bytes:
        """Up to PIECE decompressed bytes from the waiting input (b"" if it needs more)."""
        data, self._pending = self._pending, b""
        if self._deflate_head is not None:
            data = self._deflate_head + data
            if len(data) < 2:
                self._deflate_head = data
                return b""
            self._deflate_head = None
            if (data[0] & 0x0F) != 8 or (data[0] << 8 | data[1]) % 31:
                self._z = zlib.decompressobj(-15)  # raw deflate, as some servers send it
        try:
            out = self._z.decompress(data, PIECE)
        except zlib.error as exc:
            raise UpstreamProtocolError(f"undecodable compressed body: {exc}") from None
        self._pending = self._z.unconsumed_tail
        self.produced += len(out)
        if self.produced > self._limit:
            raise too_large(self._limit)
        return out

    def end(self) -> bytes:
        """No more input: the last bytes; UpstreamTruncated if the compressed stream is cut."""
        try:
            tail = self._z.flush()
        except zlib.error as exc:
            raise UpstreamProtocolError(f"undecodable compressed body: {exc}") from None
        self.produced += len(tail)
        if self.produced > self._limit:
            raise too_large(self._limit)
        if self._fed and not self._z.eof:
            raise UpstreamTruncated("the compressed body ended before its compressed stream did")
        return tail
