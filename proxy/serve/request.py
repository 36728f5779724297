"""A client request as the gateway's own HTTP/1.1 server hands it to a handler: the head parsed,
the body read by the connection (within the body deadline and the size limit)."""

from __future__ import annotations

import asyncio
import zlib
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote

from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

from driftgate.proxy.errors import BodyTooLarge, InvalidRequest, RequestTimeout

if TYPE_CHECKING:
    from driftgate.proxy.serve.protocol import ClientConnection

_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class Request:
    """One request: method, path, query, headers; `read()` gives the body (decoded)."""

    __slots__ = (
        "_body",
        "_chunks",
        "_error",
        "_size",
        "_too_large",
        "_waiter",
        "body_complete",
        "conn",
        "content_length",
        "headers",
        "keep_alive",
        "method",
        "path",
        "raw_query",
        "target",
        "version",
    )

    def __init__(
        self,
        conn: ClientConnection,
        method: str,
        target: bytes,
        headers: CIMultiDict[str],
        version: str,
        keep_alive: bool,
    ) -> None:
        self.conn = conn
        self.method = method
        self.target = target  # as sent (still percent-encoded): what proxy/other.py forwards
        self.path, self.raw_query = _TARGETS.get(target) or _split_target(target)
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(headers)
        self.version = version
        self.keep_alive = keep_alive
        length = headers.get("Content-Length")
        self.content_length = int(length) if length is not None and length.isdigit() else None
        self._chunks: list[bytes] = []
        self._size = 0
        self.body_complete = False  # the body has ended (the connection can take the next request)
        self._too_large = False
        self._body: bytes | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._error: Exception | None = None

    @property
    def query(self) -> MultiDictProxy[str]:
        """The query string's parameters, decoded."""
        return MultiDictProxy(MultiDict(parse_qsl(self.raw_query, keep_blank_values=True)))

    @property
    def remote(self) -> str | None:
        """The client's address."""
        return self.conn.peer

    # The connection's side: body bytes as they arrive.

    def feed(self, data: bytes, limit: int) -> None:
        """Body bytes; past `limit` they are dropped and the request marked too large."""
        if self._too_large:
            return
        self._size += len(data)
        if self._size > limit:
            self._too_large = True
            self._chunks.clear()
            return
        self._chunks.append(data)

    def complete(self) -> None:
        """The body has ended."""
        self.body_complete = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def abort(self) -> None:
        """The connection closed before the body ended."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("the client closed the connection"))

    def fail(self, error: Exception) -> None:
        """The body cannot be read (malformed framing): `read()` raises `error`."""
        self._error = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    # The handler's side.

    async def read(self, limit: int | None = None, timeout: float | None = None) -> bytes:
        """The whole body (decoded per Content-Encoding), within `timeout` seconds and `limit`
        bytes (the connection's own limits when not given)."""
        if self._body is not None:
            return self._body
        conn = self.conn
        limit = conn.max_body if limit is None else limit
        declared = self.content_length
        if declared is not None and declared > limit:
            raise BodyTooLarge(
                f"request body is {declared} bytes; this gateway accepts at most {limit}"
            )
        if self._error is not None:
            raise self._error
        if not self.body_complete:
            waiter = self._waiter = conn.loop.create_future()
            conn.body_wanted(self)
            try:
                async with asyncio.timeout(conn.body_timeout if timeout is None else timeout):
                    await waiter
            except TimeoutError:
                raise RequestTimeout(
                    f"the request body did not arrive within "
                    f"{conn.body_timeout if timeout is None else timeout:g} s "
                    "(gateway.body_timeout)"
                ) from None
        return self._whole(limit)

    def read_now(self, limit: int) -> bytes | None:
        """The whole body (as `read` gives it) when all of it has arrived, else None: the usual
        request, whose body came with its head, is read without a coroutine."""
        if self._body is not None:
            return self._body
        if not self.body_complete:
            return None
        declared = self.content_length
        if declared is not None and declared > limit:
            raise BodyTooLarge(
                f"request body is {declared} bytes; this gateway accepts at most {limit}"
            )
        return self._whole(limit)

    def _whole(self, limit: int) -> bytes:
        """The body that has all arrived, within `limit` bytes and decoded."""
        if self._error is not None:
            raise self._error
        if self._too_large:
            raise BodyTooLarge(_over(limit))
        chunks = self._chunks
        raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if len(raw) > limit:
            raise BodyTooLarge(_over(limit))
        encoding = self.headers.get("Content-Encoding")
        if encoding is not None and encoding.strip().lower() not in ("", "identity"):
            raw = _decode(raw, encoding.strip().lower(), limit)
        self._body = raw
        return raw


_TARGETS: dict[bytes, tuple[str, str]] = {}  # request targets as sent -> (path, query)
_TARGETS_KEPT = 1024  # clients post to the same few targets; past this a target is split each time


def _split_target(target: bytes) -> tuple[str, str]:
    """The path (percent-decoded, like aiohttp's request.path) and the query (as sent, still
    encoded) of a request target; remembered for the next request to it."""
    raw = target
    if target.startswith((b"http://", b"https://")):  # absolute-form (RFC 9112 3.2.2)
        slash = target.find(b"/", target.index(b"//") + 2)
        target = target[slash:] if slash >= 0 else b"/"
    path, _, query = target.partition(b"?")
    text = path.decode("latin-1")
    split = (unquote(text) if "%" in text else text, query.decode("latin-1"))
    if len(_TARGETS) < _TARGETS_KEPT and len(raw) <= 256:  # longer ones are split each time
        _TARGETS[raw] = split
    return split


def _over(limit: int) -> str:
    return f"request body is over {limit} bytes, the most this gateway accepts"


def _decode(raw: bytes, encoding: str, limit: int) -> bytes:
    """A gzip or deflate body inflated, never past `limit` bytes (every member of a gzip body;
    deflate with or without its zlib header, as clients send both)."""
    wbits = _DECODERS.get(encoding)
    if wbits is None:
        raise InvalidRequest(
            f"the request body's Content-Encoding {encoding[:32]!r} is not supported "
            "(send it uncompressed, gzip or deflate)"
        )
    if wbits == zlib.MAX_WBITS and raw and raw[0] & 0x0F != 8:
        wbits = -zlib.MAX_WBITS  # raw deflate: no zlib header
    out = b""
    rest = raw
    try:
        while True:
            inflater = zlib.decompressobj(wbits)
            out += inflater.decompress(rest, limit + 1 - len(out))
            if len(out) > limit:
                raise BodyTooLarge(_over(limit))
            if not inflater.eof:
                raise InvalidRequest(
                    f"the request body's {encoding} data ends early (Content-Encoding)"
                )
            rest = inflater.unused_data
            if not rest or wbits != _DECODERS["gzip"]:
                return out
    except zlib.error:
        raise InvalidRequest(
            f"the request body is not valid {encoding} data (Content-Encoding)"
        ) from None
