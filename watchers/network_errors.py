"""What went wrong on the network, in words a user can act on (never an exception class name)."""

from __future__ import annotations

import errno
import socket
import ssl

import httpx
import requests

_BY_ERRNO = {
    errno.ECONNREFUSED: "connection refused (nothing is listening at that address)",
    errno.ECONNRESET: "the connection was reset by the other side",
    errno.EHOSTUNREACH: "the host is unreachable",
    errno.ENETUNREACH: "the network is unreachable",
    errno.ETIMEDOUT: "the connection timed out",
}


def in_words(exc: BaseException) -> str:
    """`exc` (an httpx or requests error, or the OS error under it) as a short sentence."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"the server answered {exc.response.status_code}"
    for link in _chain(exc):
        if isinstance(link, socket.gaierror):
            return "the host name could not be resolved (check the URL, or the DNS)"
        if isinstance(link, ssl.SSLCertVerificationError):
            return f"its TLS certificate was not accepted ({link.verify_message})"
        if isinstance(link, ssl.SSLError):
            return "the TLS handshake failed"
        if isinstance(link, OSError) and link.errno in _BY_ERRNO:
            return _BY_ERRNO[link.errno]
    if isinstance(exc, httpx.TimeoutException | requests.Timeout | TimeoutError):
        return "it did not answer in time"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server closed the connection or sent a malformed answer"
    if isinstance(exc, httpx.ConnectError | requests.ConnectionError):
        return "could not connect"
    for link in _chain(exc):
        if isinstance(link, OSError) and link.strerror:
            return link.strerror[0].lower() + link.strerror[1:]
    return "the request failed on the network"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in seen:
        seen.append(link)
        link = link.__cause__ or link.__context__
    return seen
