"""The per-backend `responses` key: which backends take /v1/responses as they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftgate.proxy.config import BackendConfig, load_config
from driftgate.proxy.errors import ConfigError


def load(tmp_path: Path, toml: str) -> tuple[BackendConfig, ...]:
    path = tmp_path / "config.toml"
    path.write_text(toml, encoding="utf-8")
    return load_config({"DRIFTGATE_HOME": str(tmp_path)}, path).backends


def test_official_openai_serves_responses_by_default_others_do_not(tmp_path: Path) -> None:
    backends = load(
        tmp_path,
        """
[backends.openai]
kind = "openai"
[backends.groq]
kind = "openai"
base_url = "https://api.groq.com/openai/v1"
[backends.vllm]
kind = "openai"
base_url = "http://127.0.0.1:8000/v1"
responses = true
[backends.anthropic]
kind = "anthropic"
""",
    )
    served = {b.name: b.serves_responses for b in backends}
    assert served == {"openai": True, "groq": False, "vllm": True, "anthropic": False}


def test_openai_can_be_told_to_bridge(tmp_path: Path) -> None:
    (b,) = load(tmp_path, '[backends.openai]\nkind = "openai"\nresponses = false\n')
    assert b.serves_responses is False and b.redacted()["responses"] is False


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        (
            '[backends.a]\nkind = "openai"\nresponses = "yes"\n',
            "responses: must be true or false",
        ),
        ('[backends.a]\nkind = "anthropic"\nresponses = true\n', "only for openai-kind"),
    ],
)
def test_bad_responses_values_are_refused(tmp_path: Path, toml: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load(tmp_path, toml)
