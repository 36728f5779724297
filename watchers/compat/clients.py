"""How each client is run headless in a compat run, and which API it speaks: Claude Code
(`claude -p`, Anthropic Messages), Codex (`codex exec` with a `model_providers` entry in a scratch
CODEX_HOME, OpenAI Responses), any other package (its bin with the prompt, Anthropic Messages).
Always an API key, never a login: HOME (and CODEX_HOME) are scratch directories."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

API_KEY = "compat-run-key-not-a-secret"  # the echo upstream accepts any key
PROMPT = "Reply with the word ok."
CODEX_MODEL = "gpt-5"
CODEX_PROVIDER = "driftgate-compat"
CODEX_KEY_ENV = "DRIFTGATE_COMPAT_KEY"

Speaks = Literal["anthropic", "responses"]


@dataclass(frozen=True)
class Launch:
    """One headless run: the command, its extra environment and its working directory."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path


@dataclass(frozen=True)
class Client:
    """A client kind: the API it speaks and how to launch it against a base URL."""

    name: str
    speaks: Speaks
    launch: Callable[[Path, str, Path], Launch]  # (bin, base URL without /v1, scratch dir)


def _anthropic_env(base_url: str) -> dict[str, str]:
    return {"ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": API_KEY,
            "OPENAI_BASE_URL": base_url + "/v1", "OPENAI_API_KEY": API_KEY}  # fmt: skip


def _claude(bin_path: Path, base_url: str, scratch: Path) -> Launch:
    return Launch([str(bin_path), "-p", PROMPT], _anthropic_env(base_url), scratch)


def _other(bin_path: Path, base_url: str, scratch: Path) -> Launch:
    return Launch([str(bin_path), PROMPT], _anthropic_env(base_url), scratch)


def codex_config(base_url: str) -> str:
    """$CODEX_HOME/config.toml: one model provider at `base_url`/v1 speaking Responses."""
    q = json.dumps  # a TOML basic string is a JSON string
    return (
        f"model = {q(CODEX_MODEL)}\nmodel_provider = {q(CODEX_PROVIDER)}\n\n"
        f"[model_providers.{CODEX_PROVIDER}]\nname = {q(CODEX_PROVIDER)}\n"
        f"base_url = {q(base_url + '/v1')}\nenv_key = {q(CODEX_KEY_ENV)}\n"
        'wire_api = "responses"\n'
    )


def _codex(bin_path: Path, base_url: str, scratch: Path) -> Launch:
    home = scratch / "codex-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(codex_config(base_url), encoding="utf-8")
    argv = [str(bin_path), "exec", "--skip-git-repo-check", PROMPT]
    return Launch(argv, {"CODEX_HOME": str(home), CODEX_KEY_ENV: API_KEY}, scratch)


CLIENTS = (
    Client("claude-code", "anthropic", _claude),
    Client("codex", "responses", _codex),
)
OTHER = Client("other", "anthropic", _other)


def client_for(package: str) -> Client:
    """The client kind of an npm package, by its name (`@anthropic-ai/claude-code`,
    `@openai/codex`, or a package named so); any other: its bin with the prompt."""
    for client in CLIENTS:
        if package.endswith(client.name):
            return client
    return OTHER
