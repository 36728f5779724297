"""The transport keys of a backend: loaded, checked at start-up, turned into transports."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftgate.proxy.app import GATEWAY_KEY, create_app
from driftgate.proxy.config import DEFAULT_MAX_RESPONSE, ProxyEnv, load_config
from driftgate.proxy.errors import ConfigError
from driftgate.proxy.upstream.aiohttp_transport import AiohttpTransport
from driftgate.proxy.upstream.client import UpstreamClient
from driftgate.proxy.upstream.settings import TransportSettings
from tests.fakes.tls_files import TLSFiles


def load(tmp_path: Path, backend: str, env: dict[str, str] | None = None) -> object:
    path = tmp_path / "config.toml"
    path.write_text(f'[backends.b]\nkind = "openai"\nbase_url = "https://x.test/v1"\n{backend}\n')
    return load_config({"DRIFTGATE_HOME": str(tmp_path), **(env or {})}, path=path)


def test_idle_keep_alive_is_shorter_than_common_servers() -> None:
    assert TransportSettings().idle_seconds < 5  # uvicorn closes idle connections after 5 s


def test_defaults(tmp_path: Path) -> None:
    cfg = load_config({"DRIFTGATE_HOME": str(tmp_path / "fresh")})  # no config file at all
    path = tmp_path / "c.toml"
    path.write_text('[backends.b]\nkind = "openai"\n')
    b = load_config({"DRIFTGATE_HOME": str(tmp_path)}, path=path).backends[0]
    assert b.transport == "fast" and b.max_response_bytes == DEFAULT_MAX_RESPONSE == 64 << 20
    assert b.ca_bundle is None and b.client_cert is None and b.client_key is None
    assert b.happy_eyeballs_delay == 0.25 and b.max_connections_per_host == 0
    assert cfg.proxies == ProxyEnv()


def test_every_key_is_read(tmp_path: Path, tls: TLSFiles) -> None:
    cfg = load(
        tmp_path,
        f'transport = "aiohttp"\nca_bundle = "{tls.ca}"\nclient_cert = "{tls.client[0]}"\n'
        f'client_key = "{tls.client[1]}"\nmax_response_bytes = 2048\n'
        "happy_eyeballs_delay = false\nmax_connections_per_host = 8",
    )
    b = cfg.backends[0]  # type: ignore[attr-defined]
    assert (b.transport, b.ca_bundle, b.client_cert, b.client_key) == (
        "aiohttp", tls.ca, tls.client[0], tls.client[1]
    )  # fmt: skip
    assert (b.max_response_bytes, b.happy_eyeballs_delay, b.max_connections_per_host) == (
        2048, None, 8
    )  # fmt: skip


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ('transport = "curl"', 'transport: must be one of "fast", "aiohttp", got "curl"'),
        ('ca_bundle = "/nonexistent/ca.pem"', 'ca_bundle: "/nonexistent/ca.pem" does not exist'),
        ('client_cert = "/nonexistent/c.pem"', 'client_cert: "/nonexistent/c.pem" does not exist'),
        ("ca_bundle = 3", "ca_bundle: must be a path in quotes"),
        ("max_response_bytes = 10", "max_response_bytes: must be at least 1024, got 10"),
        ('max_response_bytes = "big"', "max_response_bytes: must be a whole number"),
        ("happy_eyeballs_delay = -1", "happy_eyeballs_delay: must be greater than 0, got -1"),
        ("max_connections_per_host = -2", "max_connections_per_host: must be at least 0, got -2"),
    ],
)
def test_bad_values_are_refused_with_a_sentence(tmp_path: Path, line: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, line)
    assert needle in str(err.value)
    assert "config.toml:4: [backends.b] " in str(err.value)


def test_client_key_without_its_certificate_is_refused(tmp_path: Path, tls: TLSFiles) -> None:
    with pytest.raises(ConfigError, match="client_key: needs client_cert"):
        load(tmp_path, f'client_key = "{tls.client[1]}"')


def test_proxy_environment_is_captured_at_load(tmp_path: Path) -> None:
    env = {
        "HTTPS_PROXY": "http://upper:3128",
        "https_proxy": "http://lower:3128",
        "HTTP_PROXY": "http://plain:3128",
        "NO_PROXY": "localhost,127.0.0.1",
    }
    cfg = load(tmp_path, "", env)
    assert cfg.proxies == ProxyEnv(  # type: ignore[attr-defined]
        http="http://plain:3128", https="http://lower:3128", no_proxy="localhost,127.0.0.1"
    )


def test_a_file_that_is_not_pem_is_refused_before_listening(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    for line in (f'ca_bundle = "{junk}"', f'client_cert = "{junk}"'):
        cfg = load(tmp_path, line)
        with pytest.raises(ConfigError, match="PEM") as err:
            create_app(cfg, env={})  # type: ignore[arg-type]
        assert str(err.value).startswith("backend 'b': ")


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"HTTPS_PROXY": "https://proxy.test:443"}, "HTTPS_PROXY must be an http:// proxy URL"),
        ({"HTTP_PROXY": "http://proxy.test:notaport"}, "HTTP_PROXY is not a proxy URL"),
    ],
)
def test_unusable_proxy_url_is_refused_before_listening(
    tmp_path: Path, env: dict[str, str], needle: str
) -> None:
    cfg = load(tmp_path, "", env)
    with pytest.raises(ConfigError) as err:
        create_app(cfg, env={})  # type: ignore[arg-type]
    assert needle in str(err.value)


def test_backends_with_equal_settings_share_one_transport(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[backends.a]\nkind = "openai"\n[backends.b]\nkind = "anthropic"\n'
        '[backends.c]\nkind = "openai"\ntransport = "aiohttp"\n'
    )
    cfg = load_config({"DRIFTGATE_HOME": str(tmp_path)}, path=path)
    gw = create_app(cfg, env={})[GATEWAY_KEY]
    assert gw.transport("a") is gw.transport("b")
    assert isinstance(gw.transport("a"), UpstreamClient)
    assert isinstance(gw.transport("c"), AiohttpTransport)


def test_the_tls_example_in_the_docs_starts_with_real_files(tmp_path: Path, tls: TLSFiles) -> None:
    page = (Path(__file__).parents[3] / "docs" / "upstream.md").read_text()
    blocks = [part.split("```")[0] for part in page.split("```toml\n")[1:]]
    example = next(b for b in blocks if "client_cert" in b)
    for path, real in (
        ("/etc/driftgate/internal-ca.pem", tls.ca),
        ("/etc/driftgate/gateway-client.pem", tls.client[0]),
        ("/etc/driftgate/gateway-client.key", tls.client[1]),
    ):
        assert path in example
        example = example.replace(path, str(real))
    (tmp_path / "config.toml").write_text(example)
    cfg = load_config({"DRIFTGATE_HOME": str(tmp_path)})
    backend = cfg.backends[0]
    assert (backend.ca_bundle, backend.client_cert) == (tls.ca, tls.client[0])
    create_app(cfg, env={"INTERNAL_LLM_KEY": "k"})  # builds the TLS context: files usable
