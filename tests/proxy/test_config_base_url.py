"""Base URLs that load but could never work: refused at start-up, or warned about, with the fix."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from driftgate.proxy.config import BackendConfig, base_url_hint, load_config
from driftgate.proxy.errors import ConfigError


def refusal(tmp_path: Path, toml: str, **env: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config({"DRIFTGATE_HOME": str(tmp_path), **env}, path)
    return str(exc.value)


@pytest.mark.parametrize(
    ("url", "what"),
    [
        ("http://127.0.0.1:8000/v1 ", "a space (character 25 of 25)"),
        (" https://api.openai.com/v1", "a space (character 1 of 26)"),
        ("https://api.openai.com/v1\n", "a line break (character 26 of 26)"),
        ("https://api.openai.com/\tv1", "a tab (character 24 of 26)"),
    ],
)
def test_a_base_url_with_whitespace_is_refused(tmp_path: Path, url: str, what: str) -> None:
    # Loaded as it was, the space went into every request line: the upstream answered 404.
    escaped = url.replace("\n", "\\n").replace("\t", "\\t")
    msg = refusal(tmp_path, f'[backends.x]\nkind = "openai"\nbase_url = "{escaped}"\n')
    assert f"[backends.x] base_url: holds {what}" in msg
    assert "remove it" in msg


@pytest.mark.parametrize(
    "url", ["https://api.anthropic.com/v1", "https://api.anthropic.com/v1/", "http://h:1/x/v1"]
)
def test_an_anthropic_base_url_ending_in_v1_is_refused(tmp_path: Path, url: str) -> None:
    # driftgate appends /v1/messages itself: this would post to .../v1/v1/messages (404).
    msg = refusal(tmp_path, f'[backends.claude]\nkind = "anthropic"\nbase_url = "{url}"\n')
    assert "[backends.claude] base_url: ends in /v1" in msg
    assert "leave /v1 out" in msg


def test_anthropic_base_url_from_the_environment_ending_in_v1_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^ANTHROPIC_BASE_URL ends in /v1"):
        load_config(
            {
                "DRIFTGATE_HOME": str(tmp_path),
                "ANTHROPIC_API_KEY": "k",
                "ANTHROPIC_BASE_URL": "https://api.anthropic.com/v1",
            }
        )


def test_an_openai_base_url_with_v1_and_anthropic_without_load(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[backends.a]\nkind = "anthropic"\nbase_url = "https://gw.example/anthropic"\n'
        '[backends.o]\nkind = "openai"\nbase_url = "https://api.groq.com/openai/v1"\n'
    )
    config = load_config({"DRIFTGATE_HOME": str(tmp_path)}, path)
    assert [b.base_url for b in config.backends] == [
        "https://gw.example/anthropic",
        "https://api.groq.com/openai/v1",
    ]
    assert all(base_url_hint(b) is None for b in config.backends)


@pytest.mark.parametrize("url", ["http://127.0.0.1:11434", "http://127.0.0.1:11434/"])
def test_an_openai_base_url_without_a_path_gets_a_hint(url: str) -> None:
    backend = BackendConfig(name="ollama", kind="openai", base_url=url.rstrip("/"))
    hint = base_url_hint(backend)
    assert hint is not None
    assert "requests go to http://127.0.0.1:11434/chat/completions" in hint
    assert "http://127.0.0.1:11434/v1" in hint


def test_the_hint_is_logged_when_the_gateway_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from driftgate.proxy.health import warn_about_backends

    path = tmp_path / "config.toml"
    path.write_text('[backends.ollama]\nkind = "openai"\nbase_url = "http://127.0.0.1:11434"\n')
    config = load_config({"DRIFTGATE_HOME": str(tmp_path)}, path)
    with caplog.at_level(logging.WARNING, logger="driftgate.app"):
        warn_about_backends(config)
    assert "backend 'ollama': base_url http://127.0.0.1:11434 has no path" in caplog.text


def test_backend_add_warns_about_a_base_url_without_a_path(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "driftgate.proxy.cli", "backend", "add", "ollama", "--kind",
         "openai", "--base-url", "http://127.0.0.1:11434", "--models", "qwen*"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "DRIFTGATE_HOME": str(tmp_path)},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "driftgate: warning: base_url http://127.0.0.1:11434 has no path" in r.stderr
    assert (tmp_path / "config.toml").exists()
