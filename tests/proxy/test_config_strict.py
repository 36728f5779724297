"""A config file that refuses mistakes: unknown tables and keys, wrong types, out-of-range values."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftgate.proxy.config import Config, load_config, settings_doc
from driftgate.proxy.errors import ConfigError


def load(tmp_path: Path, toml: str, **env: str) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(toml, encoding="utf-8")
    return load_config({"DRIFTGATE_HOME": str(tmp_path), **env}, path)


def refusal(tmp_path: Path, toml: str, **env: str) -> str:
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, toml, **env)
    return str(exc.value)


def test_an_unknown_table_names_the_file_the_line_and_the_nearest_table(tmp_path: Path) -> None:
    msg = refusal(tmp_path, "# mine\n[gatway]\nport = 4000\n")
    assert (
        msg == f"{tmp_path / 'config.toml'}:2: [gatway]: unknown table; did you mean `[gateway]`?"
    )


def test_an_unknown_key_names_its_table_line_and_the_nearest_key(tmp_path: Path) -> None:
    msg = refusal(tmp_path, '[gateway]\nhost = "127.0.0.1"\nprot = 4000\n')
    assert msg == f"{tmp_path / 'config.toml'}:3: [gateway] prot: unknown key; did you mean `port`?"


def test_an_unknown_backend_key_names_the_backend(tmp_path: Path) -> None:
    msg = refusal(
        tmp_path,
        '[backends.local]\nkind = "openai"\nbase_url = "http://127.0.0.1:1/v1"\nmodelz = ["q*"]\n',
    )
    assert msg.endswith(":4: [backends.local] modelz: unknown key; did you mean `models`?")


def test_a_key_nothing_resembles_lists_the_known_ones(tmp_path: Path) -> None:
    msg = refusal(tmp_path, "[gateway]\nzzz = 1\n")
    assert "[gateway] zzz: unknown key (known: " in msg and "max_body_bytes" in msg


def test_a_key_outside_any_table_says_where_it_belongs(tmp_path: Path) -> None:
    msg = refusal(tmp_path, "port = 4000\n")
    assert msg.endswith(":1: port: a key outside any table; it belongs in [gateway]")


def test_watch_keys_are_checked_too(tmp_path: Path) -> None:
    msg = refusal(tmp_path, "[watch]\nintervall_minutes = 5\n")
    assert "[watch] intervall_minutes: unknown key; did you mean `interval_minutes`?" in msg
    msg = refusal(tmp_path, '[watch]\npackages = [{name = "openai", tagz = ["latest"]}]\n')
    assert "[watch.packages[0]] tagz: unknown key; did you mean `tag`?" in msg
    cfg = load(tmp_path, '[watch]\nrepo = "o/r"\npackages = [{name = "openai"}]\n')
    assert cfg.watch == {"repo": "o/r", "packages": [{"name": "openai"}]}  # handed down as written


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ('[gateway]\nlog_level = "loud"\n',
         '[gateway] log_level: must be one of "debug", "info", "warning", "error", got "loud"'),
        ('[gateway]\nlog_level = "debg"\n', 'got "debg"; did you mean `debug`?'),
        ("[gateway]\nmax_body_bytes = -1\n", "[gateway] max_body_bytes: must be at least 1, got -1"),
        ("[gateway]\nport = 70000\n", "[gateway] port: must be at most 65535, got 70000"),
        ("[gateway]\nport = -1\n", "[gateway] port: must be at least 0, got -1"),
        ('[gateway]\nport = "http"\n', '[gateway] port: must be a whole number, got "http"'),
        ("[gateway]\nport = 80.5\n", "[gateway] port: must be a whole number, got 80.5"),
        ("[gateway]\ncooldown_seconds = -5\n", "cooldown_seconds: must be at least 0, got -5"),
        ('[gateway]\nconvert_unsupported = "yes"\n', "must be true or false"),
        ("[gateway]\nhost = 1\n", 'host: must be a string in quotes, e.g. "text", got 1'),
        ('[backends.x]\nkind = "openai"\ntimeout = 0\n',
         "[backends.x] timeout: must be greater than 0, got 0"),
        ('[backends.x]\nkind = "openai"\nconnect_timeout = -1\n', "must be greater than 0"),
        ('[backends.x]\nkind = "openai"\ntimeout = "soon"\n', 'timeout: must be a number, got "soon"'),
        ('[backends.x]\nkind = "gemini"\n', 'kind: must be one of "anthropic", "openai", got "gemini"'),
        ("[backends.x]\nmodels = []\n", "[backends.x]: missing key `kind`"),
        ('[backends.x]\nkind = "openai"\nauth = "cookie"\n', 'auth: must be one of "key", "passthrough"'),
        ('[backends.x]\nkind = "openai"\nauth = "passthrough"\n', 'only for kind = "anthropic"'),
        ('[backends.x]\nkind = "openai"\nmodels = "gpt-*"\n', "models: must be a list of strings"),
        ('[backends.x]\nkind = "openai"\nmodels = [1]\n', "models: must be a list of strings"),
        ('[backends.x]\nkind = "openai"\nbase_url = "api.openai.com"\n', "must start with http://"),
        ('[backends.x]\nkind = "openai"\nkey_env = "sk-abc def"\n', "must be the name of an environment variable"),
        ('backends = "x"\n', "backends: must be tables"),
        ("[backends]\nx = 1\n", "[backends.x]: must be a table, got 1"),
        ('[gateway]\ndefault_backend = "ghost"\n', '"ghost" is not a configured backend (none configured)'),
        ('[gateway]\ndefault_backend = "locl"\n[backends.local]\nkind = "openai"\n', "did you mean `local`?"),
        ("gateway = 3\n", "[gateway]: must be a table, got 3"),
        ('[fallbacks]\nopus = "openai:gpt-4o"\n', "[fallbacks] maps a model to a list"),
        ("[fallbacks]\nopus = []\n", "[fallbacks] maps a model to a list"),
        ("[watch]\ninterval_minutes = 0\n", "interval_minutes: must be greater than 0"),
        ("[gateway\n", "not valid TOML"),
    ],
)  # fmt: skip
def test_wrong_types_and_ranges_are_refused_with_a_sentence(
    tmp_path: Path, toml: str, needle: str
) -> None:
    msg = refusal(tmp_path, toml)
    assert needle in msg
    assert msg.startswith(str(tmp_path / "config.toml"))


def test_a_missing_config_path_is_an_error_not_an_empty_config(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml: no such config file"):
        load_config({"DRIFTGATE_HOME": str(tmp_path)}, missing)
    # The default file may be absent: that is a fresh install.
    assert load_config({"DRIFTGATE_HOME": str(tmp_path / "fresh")}).backends == ()


def test_a_directory_as_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read the config file"):
        load_config({"DRIFTGATE_HOME": str(tmp_path)}, tmp_path)


def test_environment_values_are_checked_and_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r'^DRIFTGATE_PORT must be a whole number, got "eighty"'):
        load(tmp_path, "", DRIFTGATE_PORT="eighty")
    with pytest.raises(ConfigError, match=r"^DRIFTGATE_PORT: must be at most 65535, got 99999"):
        load(tmp_path, "", DRIFTGATE_PORT="99999")
    with pytest.raises(ConfigError, match=r"^DRIFTGATE_LOG_LEVEL: must be one of"):
        load(tmp_path, "", DRIFTGATE_LOG_LEVEL="loud")


def test_flags_are_checked_like_the_file(tmp_path: Path) -> None:
    cfg = load(tmp_path, "")
    with pytest.raises(ConfigError, match=r"^--port: must be at most 65535, got 70000"):
        cfg.with_overrides(port=70000)
    with pytest.raises(ConfigError, match=r"^--log-level: must be one of"):
        cfg.with_overrides(log_level="loud")
    assert cfg.with_overrides(templates_dir=Path("~/t")).templates_dir == Path.home() / "t"


def test_every_key_is_documented() -> None:
    rows = settings_doc()
    assert {("gateway", "port"), ("backends.NAME", "models"), ("watch", "repo")} <= {
        (t, k) for t, k, _, _ in rows
    }
    assert all(doc for _, _, _, doc in rows)


def test_watch_canary_and_ping_are_declared(tmp_path: Path) -> None:
    cfg = load(
        tmp_path, '[watch]\nping_url = "https://hc.example/x"\n[watch.canary]\nmax_usd = 0.5\n'
    )
    assert cfg.watch == {"ping_url": "https://hc.example/x", "canary": {"max_usd": 0.5}}
    msg = refusal(tmp_path, "[watch.canary]\nmax_probe = 3\n")
    assert msg.endswith(":2: [watch.canary] max_probe: unknown key; did you mean `max_probes`?")
    assert "must be greater than 0" in refusal(tmp_path, "[watch.canary]\nmax_usd = 0\n")


def test_daemon_and_liveness_tables_are_declared(tmp_path: Path) -> None:
    toml = (
        "[daemon]\njitter_seconds = 0\n[daemon.jobs.canary]\ninterval_seconds = 60\n"
        '[watch.liveness]\nmax_age_hours = {npm = 3}\nsource = "daemon"\n'
    )
    cfg = load(tmp_path, toml)
    assert cfg.daemon == {"jitter_seconds": 0, "jobs": {"canary": {"interval_seconds": 60}}}
    assert cfg.watch == {"liveness": {"max_age_hours": {"npm": 3}, "source": "daemon"}}
    msg = refusal(tmp_path, "[daemon.jobs.npm]\ninterval = 5\n")
    assert msg.endswith(
        ":2: [daemon.jobs.npm] interval: unknown key; did you mean `interval_seconds`?"
    )
    assert "must be greater than 0" in refusal(
        tmp_path, "[daemon.jobs.npm]\ninterval_seconds = 0\n"
    )
    assert "[daemon] jitter_seconds: must be at least 0" in refusal(
        tmp_path, "[daemon]\njitter_seconds = -1\n"
    )
