"""The package installs, the CLI answers, the bundled templates validate."""

from driftgate.proxy.cli import main
from driftgate.proxy.templates import load_bundled


def test_bundled_templates_load_and_hash() -> None:
    s = load_bundled()
    assert {"anthropic", "openai", "claude-code"} <= set(s.templates)
    assert all(t.hash.startswith("sha256:") and len(t.hash) == 71 for t in s.templates.values())


def test_cli_without_command_prints_help(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main([]) == 2
    assert "driftgate" in capsys.readouterr().out
