"""Credentials stay out of every surface: refused in URLs, checked as headers, never printed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from driftgate.proxy.config import BackendConfig, Config, load_config
from driftgate.proxy.errors import ConfigError
from driftgate.proxy.server import GatewayServer
from tests.fakes.server_thread import closed_port

INLINE = "sk-inline-0123456789abcdefXYZ"
FROM_ENV = "sk-fromenv-9876543210fedcbaQRS"
PASSWORD = "hunter2-pw-secret"


def cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real `driftgate` command in a subprocess, with DRIFTGATE_HOME in tmp_path."""
    base = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "driftgate.proxy.cli", *args],
        capture_output=True,
        text=True,
        env={**base, "DRIFTGATE_HOME": str(tmp_path), **env},
        timeout=60,
        check=False,
    )


def test_backend_add_refuses_a_base_url_with_credentials(tmp_path: Path) -> None:
    url = f"https://user:{PASSWORD}@api.example.com/v1"
    r = cli(tmp_path, "backend", "add", "ex", "--kind", "openai", "--base-url", url)
    assert r.returncode == 2
    assert "--base-url holds credentials (user:password@ before the host)" in r.stderr
    assert PASSWORD not in r.stdout + r.stderr
    assert not (tmp_path / "config.toml").exists()


@pytest.mark.parametrize("userinfo", [f"user:{PASSWORD}", PASSWORD])
def test_a_base_url_with_credentials_is_refused_at_load_without_repeating_them(
    tmp_path: Path, userinfo: str
) -> None:
    (tmp_path / "config.toml").write_text(
        f'[backends.ex]\nkind = "openai"\nbase_url = "https://{userinfo}@h.example/v1"\n'
    )
    for args in (("proxy", "--port", "0"), ("backend", "list")):
        r = cli(tmp_path, *args)
        assert r.returncode == 2, r.stdout
        assert ":3: [backends.ex] base_url: holds credentials" in r.stderr
        assert PASSWORD not in r.stdout + r.stderr


def test_an_env_base_url_with_credentials_is_refused(tmp_path: Path) -> None:
    env = {"DRIFTGATE_HOME": str(tmp_path), "OPENAI_API_KEY": FROM_ENV,
           "OPENAI_BASE_URL": f"https://u:{PASSWORD}@h.example/v1"}  # fmt: skip
    with pytest.raises(ConfigError) as exc:
        load_config(env)
    assert str(exc.value).startswith("OPENAI_BASE_URL holds credentials")
    assert PASSWORD not in str(exc.value)


def test_an_inline_key_with_a_newline_is_refused_at_load(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(f'[backends.ex]\nkind = "openai"\nkey = "{INLINE}\\n"\n')
    with pytest.raises(ConfigError) as exc:
        load_config({"DRIFTGATE_HOME": str(tmp_path)})
    assert "[backends.ex] key: holds a line break (character 30 of 30)" in str(exc.value)
    assert INLINE not in str(exc.value)


def test_backend_add_refuses_a_key_with_a_space(tmp_path: Path) -> None:
    r = cli(tmp_path, "backend", "add", "ex", "--kind", "openai", "--key", f"Bearer {INLINE}")
    assert r.returncode == 2 and "--key holds a space (character 7 of" in r.stderr
    assert INLINE not in r.stdout + r.stderr


def test_an_env_key_with_a_stray_newline_stops_the_start_naming_the_variable(
    tmp_path: Path,
) -> None:
    r = cli(tmp_path, "proxy", "--port", "0", OPENAI_API_KEY=FROM_ENV + "\r\n")
    assert r.returncode == 2
    assert r.stderr.startswith(
        "driftgate: backend 'openai': the API key in $OPENAI_API_KEY holds a carriage return"
    )
    assert FROM_ENV not in r.stdout + r.stderr
    assert "listening" not in r.stdout


def test_the_same_check_applies_to_an_embedded_gateway(tmp_path: Path) -> None:
    backend = BackendConfig("b", "openai", "http://127.0.0.1:1/v1", key_env="B_KEY")
    config = Config(home=tmp_path, path=tmp_path / "c.toml", port=0, backends=(backend,))
    server = GatewayServer(config, env={"B_KEY": "k\x00ey"})
    with pytest.raises(ConfigError, match=r"\$B_KEY holds the character U\+0000"):
        server.start()


def test_no_credential_in_the_start_up_line_backend_list_health_or_log(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    (tmp_path / "config.toml").write_text(
        f'[backends.inline]\nkind = "openai"\nbase_url = "{dead}"\nkey = "{INLINE}"\n'
        f'models = ["gpt-*"]\n\n'
        f'[backends.env]\nkind = "anthropic"\nbase_url = "{dead.removesuffix("/v1")}"\nkey_env = "MY_KEY"\n'
    )
    env = {**os.environ, "DRIFTGATE_HOME": str(tmp_path), "MY_KEY": FROM_ENV}
    proc = subprocess.Popen(
        [sys.executable, "-m", "driftgate.proxy.cli", "proxy", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on " in line, line
        url = line.split("listening on ")[1].split()[0]
        health = httpx.get(url + "/health").text
        answered = [
            httpx.post(
                url + "/v1/chat/completions",
                json={"model": model, "messages": [{"role": "user", "content": "x"}]},
                headers={"authorization": f"Bearer {INLINE}"},  # a client echoing a secret
            )
            for model in ("gpt-4o", "claude-sonnet-4-6")
        ]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    listed = (
        cli(tmp_path, "backend", "list").stdout + cli(tmp_path, "backend", "list", "--json").stdout
    )
    assert [r.status_code for r in answered] == [502, 502]
    assert "-> inline" in err and "-> env" in err  # the request log was written
    everything = line + out + err + health + listed + "".join(r.text for r in answered)
    assert "inline (openai" in line and "key from $MY_KEY" in line
    for secret in (INLINE, FROM_ENV):
        assert secret not in everything
