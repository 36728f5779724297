"""The typed config: file < environment < flags, home directory, defaults, errors, private writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from driftgate.proxy.config import (
    DEFAULT_BASE_URLS,
    DEFAULT_PORT,
    BackendConfig,
    load_config,
    redact_secret,
    write_table,
)
from driftgate.proxy.errors import ConfigError

SECRET = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz"


def home_with(tmp_path: Path, toml: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(toml, encoding="utf-8")
    return {"DRIFTGATE_HOME": str(home)}


def test_home_defaults_and_no_file(tmp_path: Path) -> None:
    cfg = load_config({"DRIFTGATE_HOME": str(tmp_path)})
    assert cfg.home == tmp_path and cfg.path == tmp_path / "config.toml"
    assert cfg.port == DEFAULT_PORT and cfg.host == "127.0.0.1"
    assert cfg.backends == () and cfg.templates_dir is None and cfg.convert_unsupported is False


def test_home_falls_back_to_dot_driftgate(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text("")
    cfg = load_config({}, path=tmp_path / "empty.toml")
    assert cfg.home == Path.home() / ".driftgate"


def test_backends_from_api_keys_when_there_is_no_file(tmp_path: Path) -> None:
    env = {
        "DRIFTGATE_HOME": str(tmp_path),
        "ANTHROPIC_API_KEY": SECRET,
        "OPENAI_API_KEY": "sk-proj-xyz",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1/",
        "ANTHROPIC_BASE_URL": "",
    }
    cfg = load_config(env)
    assert [(b.name, b.kind) for b in cfg.backends] == [
        ("anthropic", "anthropic"),
        ("openai", "openai"),
    ]
    anth, oai = cfg.backends
    assert anth.base_url == DEFAULT_BASE_URLS["anthropic"]  # empty env var means unset
    assert oai.base_url == "http://127.0.0.1:9/v1"
    assert anth.key is None and anth.key_env == "ANTHROPIC_API_KEY"  # the key stays in the env
    assert anth.resolve_key(env) == SECRET


def test_backends_from_the_file_replace_the_key_defaults(tmp_path: Path) -> None:
    env = home_with(
        tmp_path,
        """
[backends.local]
kind = "openai"
base_url = "http://127.0.0.1:11434/v1/"
models = ["qwen-*"]
timeout = 30
""",
    )
    env["ANTHROPIC_API_KEY"] = SECRET
    cfg = load_config(env)
    assert cfg.backends == (
        BackendConfig(
            name="local",
            kind="openai",
            base_url="http://127.0.0.1:11434/v1",
            models=("qwen-*",),
            timeout=30.0,
        ),
    )


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    env = home_with(
        tmp_path,
        """
[gateway]
port = 4000
templates_dir = "/from/file"
cooldown_seconds = 5
""",
    )
    from_file = load_config(env)
    assert from_file.port == 4000 and from_file.templates_dir == Path("/from/file")
    assert from_file.cooldown_seconds == 5.0
    env |= {"DRIFTGATE_PORT": "5000", "DRIFTGATE_TEMPLATES_DIR": "/from/env"}
    from_env = load_config(env)
    assert from_env.port == 5000 and from_env.templates_dir == Path("/from/env")
    flagged = from_env.with_overrides(port=6000, templates_dir=None, host="0.0.0.0")
    assert flagged.port == 6000 and flagged.host == "0.0.0.0"
    assert flagged.templates_dir == Path("/from/env")  # an unset flag changes nothing


def test_config_path_flag_wins_over_home(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text("[gateway]\nport = 7777\nconvert_unsupported = true\n", encoding="utf-8")
    env = home_with(tmp_path, "[gateway]\nport = 4000\n")
    cfg = load_config(env, path=other)
    assert cfg.path == other and cfg.port == 7777 and cfg.convert_unsupported is True
    assert cfg.home == tmp_path / "home"


def test_fallbacks_and_default_backend(tmp_path: Path) -> None:
    env = home_with(
        tmp_path,
        """
[gateway]
default_backend = "local"
[backends.local]
kind = "openai"
base_url = "http://127.0.0.1:1/v1"
[fallbacks]
opus = ["local:qwen-coder", "gpt-4o"]
""",
    )
    cfg = load_config(env)
    assert cfg.default_backend == "local"
    assert cfg.fallbacks == {"opus": ("local:qwen-coder", "gpt-4o")}
    assert cfg.backend("local") is cfg.backends[0] and cfg.backend("nope") is None


def test_write_table_is_private_when_a_key_is_present(tmp_path: Path) -> None:
    path = tmp_path / "h" / "config.toml"
    write_table(path, {"backends": {"a": {"kind": "anthropic", "key": SECRET}}})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    cfg = load_config({"DRIFTGATE_HOME": str(tmp_path / "h")})
    assert cfg.backends[0].resolve_key({}) == SECRET
    assert SECRET not in repr(cfg.backends[0].redacted())
    assert not list(path.parent.glob("*.tmp"))


def test_write_table_without_a_key_is_not_made_private_and_replaces_atomically(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.toml"
    write_table(path, {"backends": {"a": {"kind": "anthropic", "key": SECRET}}})
    write_table(path, {"backends": {"a": {"kind": "anthropic", "key_env": "ANTHROPIC_API_KEY"}}})
    assert SECRET not in path.read_text()
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode & 0o077 == 0o044 & ~_umask()


def test_redaction_never_shows_a_short_secret_and_keeps_a_long_ones_edges() -> None:
    assert redact_secret("short") == "****"
    assert redact_secret(SECRET) == "sk-a…yz"
    backend = BackendConfig(
        name="a", kind="anthropic", base_url="u", key=SECRET, auth="passthrough"
    )
    assert backend.redacted() == {
        "name": "a",
        "kind": "anthropic",
        "base_url": "u",
        "auth": "passthrough",
        "key": "sk-a…yz",
    }


def test_inline_key_wins_over_key_env() -> None:
    b = BackendConfig(name="a", kind="openai", base_url="u", key_env="K", key="inline")
    assert b.resolve_key({"K": "from-env"}) == "inline"
    assert (
        BackendConfig(name="a", kind="openai", base_url="u", key_env="K").resolve_key({"K": ""})
        is None
    )


def _umask() -> int:
    """The process umask, read without setting it (os.umask would race other threads)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    return 0o022


def test_client_limits_and_shutdown_grace_from_the_file(tmp_path: Path) -> None:
    toml = (
        "[gateway]\nhead_timeout = 5\nbody_timeout = 90\nidle_timeout = 15\n"
        "max_connections = 100\nshutdown_grace = 0\n"
    )
    cfg = load_config(home_with(tmp_path, toml))
    assert (cfg.head_timeout, cfg.body_timeout, cfg.idle_timeout) == (5.0, 90.0, 15.0)
    assert cfg.max_connections == 100 and cfg.shutdown_grace == 0.0
    defaults = load_config({"DRIFTGATE_HOME": str(tmp_path / "none")})
    assert (defaults.head_timeout, defaults.idle_timeout, defaults.shutdown_grace) == (30, 60, 30)


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[gateway]\nhead_timeout = 0\n", "head_timeout: must be greater than 0"),
        ("[gateway]\nbody_timeout = -1\n", "body_timeout: must be greater than 0"),
        ('[gateway]\nidle_timeout = "long"\n', "idle_timeout: must be a number"),
        ("[gateway]\nmax_connections = 0\n", "max_connections: must be at least 1"),
        ("[gateway]\nshutdown_grace = -5\n", "shutdown_grace: must be at least 0"),
    ],
)
def test_client_limits_out_of_range_are_refused(tmp_path: Path, toml: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_config(home_with(tmp_path, toml))
