"""Network failures in words, from real httpx and requests errors against a closed port."""

from __future__ import annotations

import httpx
import pytest
import requests

from driftgate.watchers.network_errors import in_words
from tests.fakes.server_thread import closed_port


def test_a_refused_connection_through_httpx_and_requests() -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    with pytest.raises(httpx.ConnectError) as hx:
        httpx.get(url, timeout=5)
    with pytest.raises(requests.ConnectionError) as rq:
        requests.get(url, timeout=5)
    for exc in (hx.value, rq.value):
        assert in_words(exc) == "connection refused (nothing is listening at that address)"


def test_a_timeout_and_an_unknown_failure() -> None:
    assert in_words(httpx.ReadTimeout("timed out")) == "it did not answer in time"
    assert in_words(httpx.RemoteProtocolError("x")).startswith("the server closed the connection")
    assert in_words(OSError(5, "Input/output error")) == "input/output error"
    assert in_words(RuntimeError("?")) == "the request failed on the network"
