"""Why a connection failed, in words a user can act on: never an exception class or an errno."""

from __future__ import annotations

import errno
import socket
import ssl

_BY_ERRNO = {
    errno.ECONNREFUSED: "connection refused (nothing is listening there)",
    errno.ECONNRESET: "the connection was reset",
    errno.EHOSTUNREACH: "the host is unreachable",
    errno.ENETUNREACH: "the network is unreachable",
    errno.ETIMEDOUT: "the connection timed out",
    errno.ECONNABORTED: "the connection was aborted",
}


def in_words(exc: BaseException) -> str:
    """`exc` (an OS, DNS or TLS error, possibly wrapped by aiohttp) as a short sentence."""
    for link in _chain(exc):
        # aiohttp's certificate error is an ssl.CertificateError too, without the details: the
        # one it wraps (certificate_error, later in the chain) has them.
        if isinstance(link, ssl.SSLCertVerificationError) and hasattr(link, "verify_message"):
            return f"the TLS certificate was not accepted ({link.verify_message or link.reason})"
        if isinstance(link, ssl.SSLError) and hasattr(link, "reason"):
            return f"the TLS handshake failed ({link.reason or 'no reason given'})"
        if isinstance(link, socket.gaierror):
            return f"the host name could not be resolved ({link.strerror})"
        if isinstance(link, OSError) and link.errno in _BY_ERRNO:
            return _BY_ERRNO[link.errno]
        if isinstance(link, TimeoutError):
            return "it timed out"
    for link in _chain(exc):
        if isinstance(link, OSError) and link.strerror:
            return link.strerror[0].lower() + link.strerror[1:]
        if isinstance(link, UnicodeError | ValueError):
            return "the host name is not valid"
    return str(exc) or "the connection failed"


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc`, the OS or certificate error an aiohttp error carries, and their causes."""
    out: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        link = todo.pop(0)
        if link is None or link in out:
            continue
        out.append(link)
        todo += [
            getattr(link, "os_error", None),
            getattr(link, "certificate_error", None),
            link.__cause__,
            link.__context__,
        ]
    return out
