"""A backend pointing back at the gateway's own address is refused at start-up, not looped on."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftgate.proxy.config import BackendConfig, Config, load_config
from driftgate.proxy.errors import ConfigError
from driftgate.proxy.self_loop import check_self_loop, looping_backends
from driftgate.proxy.server import GatewayServer


def config(tmp_path: Path, url: str, host: str = "127.0.0.1", port: int = 3456) -> Config:
    backend = BackendConfig(name="b", kind="anthropic", base_url=url, key="k")
    return Config(home=tmp_path, path=tmp_path / "c.toml", host=host, port=port,
                  backends=(backend,), api_key="gw")  # fmt: skip


@pytest.mark.parametrize(
    ("url", "host", "loops"),
    [
        ("http://127.0.0.1:3456", "127.0.0.1", True),
        ("http://localhost:3456/", "127.0.0.1", True),
        ("http://[::1]:3456", "127.0.0.1", True),
        ("http://127.0.0.1:3456", "0.0.0.0", True),
        ("http://10.0.0.5:3456", "10.0.0.5", True),
        ("http://127.0.0.1:3457", "127.0.0.1", False),
        ("http://10.0.0.5:3456", "127.0.0.1", False),
        ("https://api.anthropic.com", "127.0.0.1", False),
    ],
)
def test_own_address_is_detected(tmp_path: Path, url: str, host: str, loops: bool) -> None:
    assert bool(looping_backends(config(tmp_path, url, host))) is loops


def test_port_zero_never_loops(tmp_path: Path) -> None:
    assert looping_backends(config(tmp_path, "http://127.0.0.1:3456", port=0)) == []


def test_env_base_url_meant_for_clients_is_refused_with_a_way_out(tmp_path: Path) -> None:
    # The README tells clients ANTHROPIC_BASE_URL=http://127.0.0.1:3456; the same shell starting
    # the gateway with no config would make the default backend the gateway itself.
    env = {"ANTHROPIC_API_KEY": "sk-x", "ANTHROPIC_BASE_URL": "http://127.0.0.1:3456"}
    cfg = load_config(env={**env, "DRIFTGATE_HOME": str(tmp_path)})  # no config file there
    with pytest.raises(ConfigError, match="points at this gateway itself") as exc:
        check_self_loop(cfg)
    assert "env -u ANTHROPIC_BASE_URL" in str(exc.value)
    with pytest.raises(ConfigError):
        GatewayServer(cfg)
