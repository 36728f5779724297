"""Start-up checks and the start-up line of `driftgate proxy`."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftgate.proxy.config import BackendConfig, Config
from driftgate.proxy.errors import ConfigError
from driftgate.proxy.server import GatewayServer, check_listen, startup_line


@pytest.mark.parametrize("port", [-1, 65536, 99999])
def test_a_port_out_of_range_is_a_config_error_not_a_traceback(tmp_path: Path, port: int) -> None:
    config = Config(home=tmp_path, path=tmp_path / "c.toml", port=port)
    with pytest.raises(ConfigError, match="between 0 and 65535"):
        check_listen(config)


def test_startup_line_flags_an_unset_key_variable(tmp_path: Path) -> None:
    backends = (
        BackendConfig(name="groq", kind="openai", base_url="http://127.0.0.1:9/v1", key_env="GQ"),
        BackendConfig(name="local", kind="openai", base_url="http://127.0.0.1:9/v1"),
    )
    config = Config(home=tmp_path, path=tmp_path / "c.toml", port=0, backends=backends)
    with GatewayServer(config, env={}) as gw:
        assert gw.app is not None
        line = startup_line(config, gw.url, gw.app)
    assert "groq (openai http://127.0.0.1:9/v1, key from $GQ NOT SET)" in line
    assert "local (openai http://127.0.0.1:9/v1)" in line


def test_startup_line_says_a_wildcard_bind_reaches_every_address(tmp_path: Path) -> None:
    # Started with --host 0.0.0.0 (and a gateway key), the line said only "listening on
    # http://127.0.0.1:PORT": someone checking what they exposed read "loopback only".
    config = Config(home=tmp_path, path=tmp_path / "c.toml", host="0.0.0.0", port=0, api_key="k")
    with GatewayServer(config, env={}) as gw:
        assert gw.app is not None
        line = startup_line(config, gw.url, gw.app)
        loopback = startup_line(
            Config(home=tmp_path, path=tmp_path / "c.toml", port=0), gw.url, gw.app
        )
    assert f"listening on {gw.url} and every other address (bound to 0.0.0.0) | " in line
    assert "every other address" not in loopback
