"""Both transports say why a connection failed in the same words, never an exception class name."""

from __future__ import annotations

import pytest

from driftgate.proxy.upstream.errors import UpstreamConnectError
from tests.fakes.raw_http import Server, keep_alive, response, run
from tests.fakes.server_thread import closed_port
from tests.fakes.tls_files import TLSFiles
from tests.proxy.upstream.test_conformance import kind, opened, post

__all__ = ["kind"]  # the fixture: each test runs once per transport


def _refusal(coro: object) -> str:
    async def scenario() -> str:
        with pytest.raises(UpstreamConnectError) as exc:
            await coro  # type: ignore[misc]
        return str(exc.value)

    return run(scenario())  # type: ignore[no-any-return]


def test_a_refused_connection(kind: str) -> None:
    port = closed_port()

    async def attempt() -> None:
        async with opened(kind) as t:
            await post(t, f"http://127.0.0.1:{port}/")

    msg = _refusal(attempt())
    assert (
        msg
        == f"cannot connect to 127.0.0.1:{port}: connection refused (nothing is listening there)"
    )


@pytest.mark.parametrize(
    ("which", "why"),
    [("self_signed", "self-signed certificate"), ("wrong_host", "IP address mismatch")],
)
def test_a_certificate_that_is_not_accepted(kind: str, tls: TLSFiles, which: str, why: str) -> None:
    async def attempt() -> None:
        handler = keep_alive(lambda _: response(b"ok"))
        async with (
            Server(handler, tls.server_context(which)) as srv,
            opened(kind, ca_bundle=tls.ca) as t,
        ):
            await post(t, srv.url + "/")

    msg = _refusal(attempt())
    assert "the TLS certificate was not accepted (" in msg and why in msg
    assert "Error" not in msg and "[SSL" not in msg
