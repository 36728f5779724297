"""Gateway key checks, bind safety and the credentials each backend receives."""

from __future__ import annotations

from pathlib import Path

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from driftgate.proxy.auth import GatewayKey, backend_auth, check_bind, is_loopback, upstream_headers
from driftgate.proxy.config import BackendConfig, Config
from driftgate.proxy.errors import ConfigError, Unauthorized

ANT = BackendConfig(name="ant", kind="anthropic", base_url="http://a", key="sk-ant-backend-key")
PASS = BackendConfig(name="pt", kind="anthropic", base_url="http://a", auth="passthrough")
OAI = BackendConfig(name="oai", kind="openai", base_url="http://o/v1", key_env="OAI_KEY")
LOCAL = BackendConfig(name="local", kind="openai", base_url="http://l/v1")


def headers(**kv: str) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict({k.replace("_", "-"): v for k, v in kv.items()}))


def config(host: str, api_key: str | None = None) -> Config:
    return Config(
        home=Path("/nonexistent"), path=Path("/nonexistent/c.toml"), host=host, api_key=api_key
    )


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.0.0.5", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.2", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_non_loopback_bind_needs_a_gateway_key() -> None:
    with pytest.raises(ConfigError, match="DRIFTGATE_API_KEY"):
        check_bind(config("0.0.0.0"))
    check_bind(config("0.0.0.0", api_key="gw-secret-123"))
    check_bind(config("127.0.0.1"))


def test_gateway_key_accepts_x_api_key_or_bearer_and_nothing_else() -> None:
    key = GatewayKey("gw-secret-123")
    key.check(headers(x_api_key="gw-secret-123"))
    key.check(headers(authorization="Bearer gw-secret-123"))
    for bad in (
        headers(),
        headers(x_api_key="nope"),
        headers(authorization="Bearer nope"),
        headers(authorization="gw-secret-123"),
    ):
        with pytest.raises(Unauthorized):
            key.check(bad)


def test_no_gateway_key_means_open() -> None:
    GatewayKey(None).check(headers())
    assert not GatewayKey(None).required


def test_anthropic_key_backend_sends_its_key_never_the_clients() -> None:
    auth = backend_auth(ANT, {})
    out = upstream_headers(
        auth,
        headers(x_api_key="client-key", authorization="Bearer client"),
        "anthropic",
        "2023-06-01",
        GatewayKey(None),
        None,
    ).headers
    assert out["x-api-key"] == "sk-ant-backend-key"
    assert "authorization" not in out
    assert out["anthropic-version"] == "2023-06-01"


def test_anthropic_headers_forwarded_with_filtered_beta_and_client_version_kept() -> None:
    auth = backend_auth(ANT, {})
    client = headers(
        anthropic_version="2099-01-01",
        anthropic_beta="raw,unfiltered",
        anthropic_dangerous_direct_browser_access="true",
        x_other="no",
    )
    out = upstream_headers(
        auth, client, "anthropic", "2023-06-01", GatewayKey(None), "filtered-beta"
    ).headers
    assert out["anthropic-version"] == "2099-01-01"
    assert out["anthropic-beta"] == "filtered-beta"
    assert out["anthropic-dangerous-direct-browser-access"] == "true"
    assert out["x-other"] == "no"  # open world: an unknown header travels as sent


def test_passthrough_forwards_the_clients_own_credentials_unchanged() -> None:
    auth = backend_auth(PASS, {})
    out = upstream_headers(
        auth,
        headers(x_api_key="sk-client", authorization="Bearer tok"),
        "anthropic",
        "2023-06-01",
        GatewayKey(None),
        None,
    ).headers
    assert out["x-api-key"] == "sk-client"
    assert out["authorization"] == "Bearer tok"


def test_passthrough_never_forwards_the_gateway_key() -> None:
    auth = backend_auth(PASS, {})
    gw = GatewayKey("gw-secret-123")
    out = upstream_headers(
        auth,
        headers(x_api_key="gw-secret-123", authorization="Bearer own-token"),
        "anthropic",
        "2023-06-01",
        gw,
        None,
    ).headers
    assert "x-api-key" not in out
    assert out["authorization"] == "Bearer own-token"


def test_passthrough_never_crosses_dialects() -> None:
    auth = backend_auth(PASS, {})
    out = upstream_headers(
        auth,
        headers(authorization="Bearer sk-openai-client"),
        "openai",
        "2023-06-01",
        GatewayKey(None),
        None,
    ).headers
    assert "authorization" not in out and "x-api-key" not in out
    assert out["anthropic-version"] == "2023-06-01"


def test_openai_backend_bearer_from_env_and_no_anthropic_headers() -> None:
    auth = backend_auth(OAI, {"OAI_KEY": "sk-oai-env"})
    out, dropped = upstream_headers(
        auth,
        headers(anthropic_beta="x", anthropic_version="2023-06-01", x_api_key="client"),
        "anthropic",
        "2023-06-01",
        GatewayKey(None),
        "x",
    )
    assert dropped == ("header:anthropic-beta",)  # the version was read, not lost
    assert out == {
        "content-type": "application/json",
        "user-agent": "driftgate/0.1.0",
        "authorization": "Bearer sk-oai-env",
    }


def test_openai_backend_without_key_sends_no_authorization() -> None:
    auth = backend_auth(LOCAL, {})
    out = upstream_headers(
        auth, headers(authorization="Bearer client"), "openai", "v", GatewayKey(None), None
    ).headers
    assert "authorization" not in out


def test_backend_urls() -> None:
    assert backend_auth(ANT, {}).url("messages") == "http://a/v1/messages"
    assert backend_auth(ANT, {}).url("count_tokens") == "http://a/v1/messages/count_tokens"
    assert backend_auth(OAI, {}).url("chat") == "http://o/v1/chat/completions"
