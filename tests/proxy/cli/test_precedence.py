"""Flags over environment over file, for every `driftgate proxy` setting, through the real parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftgate.proxy.cli import build_parser
from driftgate.proxy.cli.proxy_command import config_for
from driftgate.proxy.errors import ConfigError

FILE = """
[gateway]
host = "127.0.0.2"
port = 4000
log_level = "warning"
templates_dir = "/from/file"
"""
ENV = {
    "DRIFTGATE_HOST": "127.0.0.3",
    "DRIFTGATE_PORT": "5000",
    "DRIFTGATE_LOG_LEVEL": "error",
    "DRIFTGATE_TEMPLATES_DIR": "/from/env",
}
FLAGS = ["--host", "127.0.0.4", "--port", "6000", "--log-level", "debug", "--templates-dir", "/from/flag"]  # fmt: skip
SEEN = ("host", "port", "log_level", "templates_dir")


def resolved(tmp_path: Path, env: dict[str, str], flags: list[str]) -> tuple[object, ...]:
    (tmp_path / "config.toml").write_text(FILE)
    args = build_parser().parse_args(["proxy", *flags])
    config = config_for(args, {"DRIFTGATE_HOME": str(tmp_path), **env})
    return tuple(getattr(config, name) for name in SEEN)


def test_the_file_alone(tmp_path: Path) -> None:
    assert resolved(tmp_path, {}, []) == ("127.0.0.2", 4000, "warning", Path("/from/file"))


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    assert resolved(tmp_path, ENV, []) == ("127.0.0.3", 5000, "error", Path("/from/env"))


def test_flags_win_over_the_environment(tmp_path: Path) -> None:
    assert resolved(tmp_path, ENV, FLAGS) == ("127.0.0.4", 6000, "debug", Path("/from/flag"))


def test_each_level_only_replaces_what_it_sets(tmp_path: Path) -> None:
    got = resolved(tmp_path, {"DRIFTGATE_PORT": "5000"}, ["--log-level", "debug"])
    assert got == ("127.0.0.2", 5000, "debug", Path("/from/file"))


def test_an_empty_variable_counts_as_unset(tmp_path: Path) -> None:
    assert resolved(tmp_path, {"DRIFTGATE_PORT": ""}, [])[1] == 4000


def test_a_flag_out_of_range_is_refused_like_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--port: must be at most 65535, got 70000"):
        resolved(tmp_path, {}, ["--port", "70000"])


def test_config_may_follow_the_command_at_any_depth(tmp_path: Path) -> None:
    # `driftgate proxy --config X` (a new user's first guess) reads X as `driftgate --config X proxy`
    other = tmp_path / "other.toml"
    other.write_text("[gateway]\nport = 4100\n")
    parser = build_parser()
    after = parser.parse_args(["proxy", "--config", str(other)])
    assert config_for(after, {"DRIFTGATE_HOME": str(tmp_path)}).port == 4100
    assert parser.parse_args(["backend", "list", "--config", "b.toml"]).config == "b.toml"
    # given on both sides, the one after the command wins; given before only, it stays
    assert (
        parser.parse_args(["--config", "a.toml", "usage", "--config", "b.toml"]).config == "b.toml"
    )
    assert parser.parse_args(["--config", "a.toml", "backend", "list"]).config == "a.toml"
    assert parser.parse_args(["backend", "list"]).config is None
