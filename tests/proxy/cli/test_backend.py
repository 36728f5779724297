"""`driftgate backend add|list|remove`, run through the real top-level CLI."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from driftgate.proxy.cli import main
from driftgate.proxy.config import load_config, read_table


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRIFTGATE_HOME", str(tmp_path))
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_add_with_key_env_writes_a_table_the_loader_reads(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "backend", "add", "groq", "--kind", "openai",
        "--base-url", "https://api.groq.com/openai/v1/", "--key-env", "GROQ_API_KEY",
        "--models", "llama-*", "mixtral-8x7b",
    )  # fmt: skip
    assert code == 0
    assert "added backend 'groq'" in out
    config = load_config(env={"DRIFTGATE_HOME": str(home), "GROQ_API_KEY": "gsk-secret"})
    groq = config.backend("groq")
    assert groq is not None
    assert groq.kind == "openai"
    assert groq.base_url == "https://api.groq.com/openai/v1"
    assert groq.models == ("llama-*", "mixtral-8x7b")
    assert groq.resolve_key({"GROQ_API_KEY": "gsk-secret"}) == "gsk-secret"
    assert "gsk-secret" not in (home / "config.toml").read_text()


def test_inline_key_is_stored_0600_and_never_printed(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "sk-proj-abcdefghijklmnop1234"
    code, out, err = run(capsys, "backend", "add", "openai", "--kind", "openai", "--key", secret)
    assert code == 0
    path = home / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_table(path)["backends"]["openai"]["key"] == secret
    code, listed, _ = run(capsys, "backend", "list")
    code_json, listed_json, _ = run(capsys, "backend", "list", "--json")
    for text in (out, err, listed, listed_json):
        assert secret not in text
    assert code == code_json == 0
    rows = json.loads(listed_json)
    assert rows == [
        {
            "name": "openai",
            "kind": "openai",
            "base_url": "https://api.openai.com/v1",
            "key": "sk-p…34",
        }
    ]


def test_default_base_url_comes_from_the_kind(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "backend", "add", "claude", "--kind", "anthropic", "--key-env", "K")[0] == 0
    rows = json.loads(run(capsys, "backend", "list", "--json")[1])
    assert rows[0]["base_url"] == "https://api.anthropic.com"
    assert rows[0]["key_env"] == "K"


def test_passthrough_is_recorded_and_listed(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "backend", "add", "claude", "--kind", "anthropic", "--auth", "passthrough"
    )
    assert code == 0
    assert "warning" not in err
    config = load_config(env={"DRIFTGATE_HOME": str(home)})
    assert config.backends[0].auth == "passthrough"
    assert "passthrough" in run(capsys, "backend", "list")[1]


def test_passthrough_on_openai_kind_is_refused(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "backend", "add", "x", "--kind", "openai", "--auth", "passthrough")
    assert code == 2
    assert "only for --kind anthropic" in err
    assert not (home / "config.toml").exists()


def test_unknown_kind_is_a_clear_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "backend", "add", "x", "--kind", "gemini", "--key-env", "K")
    assert code == 2
    assert "unknown kind 'gemini'" in err and "anthropic, openai" in err
    assert "Traceback" not in err


def test_bad_base_url_and_bad_name_are_refused(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "backend", "add", "x", "--kind", "openai", "--base-url", "localhost:11434"
    )
    assert code == 2 and "http:// or https://" in err
    code, _, err = run(capsys, "backend", "add", "bad name", "--kind", "openai")
    assert code == 2 and "backend name" in err


def test_key_and_key_env_are_mutually_exclusive(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["backend", "add", "x", "--kind", "openai", "--key", "k", "--key-env", "V"])
    assert exc.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_missing_key_source_warns_but_adds(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "backend",
        "add",
        "ollama",
        "--kind",
        "openai",
        "--base-url",
        "http://127.0.0.1:11434/v1",
    )
    assert code == 0 and "no key" in out
    assert "has no key" in err and "Ollama" in err
    assert (
        read_table(home / "config.toml")["backends"]["ollama"]["base_url"]
        == "http://127.0.0.1:11434/v1"
    )


def test_duplicate_name_needs_replace(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "backend", "add", "o", "--kind", "openai", "--key-env", "A")[0] == 0
    code, _, err = run(capsys, "backend", "add", "o", "--kind", "openai", "--key-env", "B")
    assert code == 2 and "already exists" in err and "--replace" in err
    assert read_table(home / "config.toml")["backends"]["o"]["key_env"] == "A"
    code, out, _ = run(
        capsys, "backend", "add", "o", "--kind", "openai", "--key-env", "B", "--replace"
    )
    assert code == 0 and "replaced" in out
    assert read_table(home / "config.toml")["backends"]["o"]["key_env"] == "B"


def test_remove_keeps_other_tables_and_clears_a_dangling_default(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = home / "config.toml"
    path.write_text(
        '[gateway]\nport = 4000\ndefault_backend = "a"\n\n'
        '[backends.a]\nkind = "openai"\nkey_env = "A"\n\n'
        '[backends.b]\nkind = "anthropic"\nkey_env = "B"\n\n'
        "[watch]\ninterval_minutes = 60\n"
    )
    code, out, err = run(capsys, "backend", "remove", "a")
    assert code == 0 and "removed backend 'a'" in out
    assert "default backend" in err
    table = read_table(path)
    assert set(table["backends"]) == {"b"}
    assert table["gateway"] == {"port": 4000}
    assert table["watch"] == {"interval_minutes": 60}
    config = load_config(env={"DRIFTGATE_HOME": str(home)})
    assert [b.name for b in config.backends] == ["b"] and config.default_backend is None


def test_remove_unknown_name_lists_what_exists(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "backend", "add", "a", "--kind", "openai", "--key-env", "A")
    code, _, err = run(capsys, "backend", "remove", "zz")
    assert code == 2
    assert "no backend named 'zz'" in err and "configured: a" in err


def test_config_flag_edits_that_file(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "elsewhere" / "gw.toml"
    code, _, _ = run(
        capsys, "--config", str(other), "backend", "add", "a", "--kind", "openai", "--key-env", "A"
    )
    assert code == 0
    assert "a" in read_table(other)["backends"]
    assert not (home / "config.toml").exists()
    rows = json.loads(run(capsys, "--config", str(other), "backend", "list", "--json")[1])
    assert [r["name"] for r in rows] == ["a"]


def test_list_with_no_backends_says_how_to_add_one(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "backend", "list")
    assert code == 0
    assert "no backends in" in out and "driftgate backend add" in out
    assert json.loads(run(capsys, "backend", "list", "--json")[1]) == []


def test_help_explains_each_flag_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["backend", "add", "--help"])
    text = capsys.readouterr().out
    for flag in ("--kind", "--base-url", "--key-env", "--key", "--models", "--auth", "--replace"):
        assert flag in text
    assert "examples:" in text and "driftgate backend add ollama" in text


def test_bare_backend_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backend"]) == 2
    assert "add" in capsys.readouterr().out


def test_list_refuses_a_file_the_gateway_would_refuse(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (home / "config.toml").write_text("[gatway]\nport = 1\n")
    code, out, err = run(capsys, "backend", "list")
    assert code == 2 and out == ""
    assert err.endswith("config.toml:1: [gatway]: unknown table; did you mean `[gateway]`?\n")


def test_a_missing_config_flag_file_is_an_error_for_list_but_add_creates_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "new.toml"
    code, _, err = run(capsys, "--config", str(path), "backend", "list")
    assert code == 2 and "new.toml: no such config file" in err
    code, _, _ = run(capsys, "--config", str(path), "backend", "add", "x", "--kind", "openai")
    assert code == 0 and read_table(path)["backends"]["x"] == {"kind": "openai"}


def test_list_has_a_header_row_like_usage_and_stats(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "backend", "add", "groq", "--kind", "openai", "--base-url",
        "https://api.groq.com/openai/v1", "--key-env", "GROQ_API_KEY", "--models", "llama-*")  # fmt: skip
    code, out, _ = run(capsys, "backend", "list")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["NAME", "KIND", "BASE_URL", "KEY", "MODELS"]
    assert row.split() == [
        "groq",
        "openai",
        "https://api.groq.com/openai/v1",
        "$GROQ_API_KEY",
        "llama-*",
    ]
