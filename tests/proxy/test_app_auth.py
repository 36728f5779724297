"""The gateway key, credential passthrough and bind safety, seen from clients and upstreams."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from driftgate.proxy.cli import main
from driftgate.proxy.config import Config
from driftgate.proxy.errors import ConfigError
from driftgate.proxy.server import GatewayServer
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI

SONNET = "claude-sonnet-4-6"
GW_KEY = "gw-secret-key-0123456789"
MSG = [{"role": "user", "content": "hi"}]
Factory = Callable[..., Any]


def test_gateway_key_required_when_configured(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic], api_key=GW_KEY)
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=gw.url, api_key="wrong", max_retries=0).messages.create(
            model=SONNET, max_tokens=8, messages=MSG
        )
    assert fake_anthropic.requests == []
    msg = anthropic.Anthropic(base_url=gw.url, api_key=GW_KEY, max_retries=0).messages.create(
        model=SONNET, max_tokens=8, messages=MSG
    )
    assert msg.content[0].text == "echo: hi"
    forwarded = dict(fake_anthropic.last.headers)
    assert GW_KEY not in str(forwarded)  # the gateway key never travels upstream
    assert fake_anthropic.last.headers["x-api-key"] == "sk-ant-fake-test-key"


def test_gateway_key_as_bearer_for_openai_clients(
    gateway_factory: Factory, fake_openai: FakeOpenAI
) -> None:
    gw = gateway_factory(backends=[fake_openai], api_key=GW_KEY)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(
            base_url=gw.url + "/v1", api_key="nope", max_retries=0
        ).chat.completions.create(model="gpt-4o", messages=MSG)
    ok = openai.OpenAI(
        base_url=gw.url + "/v1", api_key=GW_KEY, max_retries=0
    ).chat.completions.create(model="gpt-4o", messages=MSG)
    assert ok.choices[0].message.content == "echo: hi"
    assert fake_openai.last.headers["authorization"] == "Bearer sk-openai-fake-test-key"


def test_passthrough_backend_gets_the_clients_own_credentials(gateway_factory: Factory) -> None:
    fake = FakeAnthropic(api_key="sk-ant-client-own").start()
    try:
        gw = gateway_factory(backends=[fake.backend(auth="passthrough", key=None)])
        client = anthropic.Anthropic(base_url=gw.url, api_key="sk-ant-client-own", max_retries=0)
        assert (
            client.messages.create(model=SONNET, max_tokens=8, messages=MSG).content[0].text
            == "echo: hi"
        )
        body = {"model": SONNET, "max_tokens": 8, "messages": MSG}
        r = httpx.post(
            gw.url + "/v1/messages", json=body, headers={"x-api-key": "sk-ant-client-own"}
        )
        assert r.status_code == 200
        assert fake.last.headers["x-api-key"] == "sk-ant-client-own"
        assert "authorization" not in fake.last.headers
        r = httpx.post(
            gw.url + "/v1/messages", json=body, headers={"authorization": "Bearer other-token"}
        )
        assert r.status_code == 401  # forwarded unchanged; the upstream's own refusal comes back
        assert r.json()["error"]["message"] == "invalid x-api-key"
        assert fake.last.headers["authorization"] == "Bearer other-token"
    finally:
        fake.stop()


def test_key_backend_never_sees_client_credentials(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    r = httpx.post(
        gw.url + "/v1/messages",
        json={"model": SONNET, "max_tokens": 8, "messages": MSG},
        headers={"x-api-key": "client-secret-1", "authorization": "Bearer client-secret-2"},
    )
    assert r.status_code == 200
    seen = fake_anthropic.last.headers
    assert seen["x-api-key"] == "sk-ant-fake-test-key"
    assert "authorization" not in seen


def test_server_refuses_non_loopback_bind_without_key(tmp_path: Path) -> None:
    config = Config(home=tmp_path, path=tmp_path / "c.toml", host="0.0.0.0", port=0)
    with pytest.raises(ConfigError, match="DRIFTGATE_API_KEY"):
        GatewayServer(config)


def test_cli_refuses_non_loopback_bind_without_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRIFTGATE_HOME", str(tmp_path))
    monkeypatch.delenv("DRIFTGATE_API_KEY", raising=False)
    assert main(["proxy", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "DRIFTGATE_API_KEY" in capsys.readouterr().err


def test_cli_starts_with_no_config_and_no_keys(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "DRIFTGATE_API_KEY")
    }
    env["DRIFTGATE_HOME"] = str(tmp_path)
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
        assert "listening on http://127.0.0.1:" in line, line + (
            proc.stderr.read() if proc.poll() else ""
        )
        assert "backends: none" in line and "templates: " in line
        url = line.split("listening on ")[1].split()[0]
        doc = httpx.get(url + "/health").json()
        assert doc["status"] == "no_backends" and doc["backends"] == []
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "stopped" in (proc.stderr.read() if proc.stderr else "")


def test_cli_port_in_use_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRIFTGATE_HOME", str(tmp_path))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["proxy", "--port", str(port), "--log-level", "error"]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
