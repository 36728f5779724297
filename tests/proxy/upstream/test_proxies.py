"""Reading HTTP_PROXY / HTTPS_PROXY / NO_PROXY: which targets go through which proxy."""

from __future__ import annotations

import pytest

from driftgate.proxy.config import ProxyEnv
from driftgate.proxy.errors import ConfigError
from driftgate.proxy.upstream.proxies import NoProxy, ProxyChooser, parse_proxy


def test_proxy_url_with_credentials_keeps_them_out_of_its_repr() -> None:
    proxy = parse_proxy("HTTPS_PROXY", "http://us%40er:p%3Ass@proxy.test:3128")
    assert (proxy.host, proxy.port, proxy.username, proxy.password) == (
        "proxy.test", 3128, "us@er", "p:ss"
    )  # fmt: skip
    assert proxy.authorization == "Basic dXNAZXI6cDpzcw=="  # base64("us@er:p:ss")
    assert "p:ss" not in repr(proxy) and "p%3Ass" not in repr(proxy)
    assert proxy.url == "http://proxy.test:3128" and proxy.shown == "proxy.test:3128"


def test_bare_host_port_is_read_as_http() -> None:
    proxy = parse_proxy("HTTP_PROXY", "proxy.test:8080")
    assert (proxy.host, proxy.port, proxy.authorization) == ("proxy.test", 8080, None)


@pytest.mark.parametrize("value", ["https://proxy.test", "socks5://proxy.test:1080", "http://"])
def test_unsupported_proxy_urls_are_config_errors(value: str) -> None:
    with pytest.raises(ConfigError, match="HTTPS_PROXY"):
        parse_proxy("HTTPS_PROXY", value)


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "direct"),
    [
        ("example.com", "example.com", 443, True),
        ("example.com", "api.example.com", 443, True),
        ("example.com", "notexample.com", 443, False),
        (".example.com", "api.example.com", 443, True),
        ("*.example.com", "api.example.com", 443, True),
        ("example.com:8443", "example.com", 443, False),
        ("example.com:8443", "example.com", 8443, True),
        ("10.0.0.0/8", "10.1.2.3", 80, True),
        ("10.0.0.0/8", "11.1.2.3", 80, False),
        ("::1", "::1", 80, True),
        ("[::1]:8080", "::1", 8080, True),
        ("[::1]:8080", "::1", 80, False),
        ("*", "anything.test", 1, True),
        ("localhost, 127.0.0.1", "LOCALHOST", 80, True),
        ("", "example.com", 443, False),
    ],
)
def test_no_proxy_matching(no_proxy: str, host: str, port: int, direct: bool) -> None:
    assert NoProxy(no_proxy).bypass(host, port) is direct


def test_chooser_picks_by_scheme() -> None:
    chooser = ProxyChooser(ProxyEnv(http="http://h:1", https="http://s:2", no_proxy="skip.test"))
    assert chooser.active
    assert chooser.choose("http", "a.test", 80).host == "h"  # type: ignore[union-attr]
    assert chooser.choose("https", "a.test", 443).host == "s"  # type: ignore[union-attr]
    assert chooser.choose("https", "skip.test", 443) is None
    assert not ProxyChooser(ProxyEnv()).active
    assert ProxyChooser(ProxyEnv(https="http://s:2")).choose("http", "a.test", 80) is None
