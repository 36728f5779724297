"""Client family and version from the User-Agent."""

from __future__ import annotations

import pytest

from driftgate.proxy.observe.client_agent import client_of


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ("claude-cli/2.0.14 (external, cli)", ("claude-cli", "2.0.14")),
        ("codex_cli_rs/0.46.0 (Mac OS 15.6.1; arm64) iTerm.app/3.6.1", ("codex", "0.46.0")),
        ("OpenAI/Python 1.109.1", ("openai-python", "1.109.1")),
        ("AsyncOpenAI/Python 1.109.1", ("openai-python", "1.109.1")),
        ("Anthropic/Python 0.69.0", ("anthropic-python", "0.69.0")),
        ("AsyncAnthropic/Python 0.69.0", ("anthropic-python", "0.69.0")),
        ("OpenAI/JS 5.23.0", ("openai-js", "5.23.0")),
        ("Anthropic/JS 0.65.0", ("anthropic-js", "0.65.0")),
        ("curl/8.5.0", ("curl", "8.5.0")),
        ("python-httpx/0.28.1", ("python-httpx", "0.28.1")),
        ("Mozilla/5.0 (X11; Linux x86_64)", ("mozilla", "5.0")),
        ("???", ("other", None)),
        ("", ("other", None)),
        (None, ("other", None)),
    ],
)
def test_families_and_versions(agent: str | None, expected: tuple[str, str | None]) -> None:
    assert client_of(agent) == expected


def test_long_names_are_cut_short() -> None:
    family, version = client_of("x" * 500 + "/1.0")
    assert family == "other" and version is None
    family, version = client_of("tool/" + "9" * 300)
    assert family == "tool" and version is not None and len(version) <= 40
