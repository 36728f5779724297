"""The real Codex CLI (npm @openai/codex) through the gateway, to an Anthropic and a Chat-only backend.

Codex speaks only the Responses API. The binary comes from package.json (npm ci);
DRIFTGATE_CODEX points at another one.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI

ROOT = Path(__file__).parents[2]


def codex_binary() -> str:
    found = os.environ.get("DRIFTGATE_CODEX") or str(ROOT / "node_modules" / ".bin" / "codex")
    if not Path(found).exists():
        pytest.skip(
            f"the Codex CLI is not installed at {found}: run `npm ci` (package.json lists @openai/codex)"
        )
    return found


def run_codex(
    binary: str, gateway: Any, model: str, prompt: str, tmp: Path, *flags: str
) -> subprocess.CompletedProcess[str]:
    home = tmp / "codex-home"
    work = tmp / "work"
    home.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    (home / "config.toml").write_text(
        f'model = "{model}"\nmodel_provider = "driftgate"\n\n[model_providers.driftgate]\n'
        f'name = "driftgate"\nbase_url = "{gateway.url}/v1"\nenv_key = "DRIFTGATE_CLIENT_KEY"\n'
        'wire_api = "responses"\n'
    )
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "CODEX_HOME": str(home),
           "DRIFTGATE_CLIENT_KEY": "sk-client-codex"}  # fmt: skip
    return subprocess.run(
        [binary, "exec", "--skip-git-repo-check", *flags, prompt],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("kind", ["anthropic", "chat"])
def test_codex_exec_answers_through_a_translated_backend(
    kind: str, gateway_factory: Callable[..., Any], tmp_path: Path
) -> None:
    binary = codex_binary()
    fake: Any = FakeAnthropic() if kind == "anthropic" else FakeOpenAI()
    fake.start()
    try:
        gw = gateway_factory(backends=[fake])
        model = "claude-sonnet-4-6" if kind == "anthropic" else "gpt-4o"
        done = run_codex(binary, gw, model, "say hello", tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "say hello" in done.stdout and "echo:" in done.stdout
        # A tool round trip: the fake calls Codex's first tool, Codex answers with its output.
        # With reasoning on, Anthropic's signed thinking goes to Codex as a reasoning item and
        # comes back on the next request (store = false, encrypted_content) as the same block.
        effort = ("-c", "model_reasoning_effort=high") if kind == "anthropic" else ()
        looped = run_codex(binary, gw, model, "please call tool exec_command", tmp_path, *effort)
        assert looped.returncode == 0, looped.stderr[-3000:]
        assert "tool result:" in looped.stdout
    finally:
        fake.stop()
    path = "/v1/messages" if kind == "anthropic" else "/v1/chat/completions"
    bodies = [r.json for r in fake.requests if r.path == path]
    assert len(bodies) >= 3
    last = bodies[-1]
    if kind == "anthropic":
        results = [b for b in last["messages"][-1]["content"] if b.get("type") == "tool_result"]
        assert last["thinking"]["type"] == "enabled"
        turn = last["messages"][-2]["content"]
        assert turn[0]["type"] == "thinking" and turn[0]["signature"].startswith("sig-fake-")
        assert turn[1]["type"] == "tool_use"
    else:
        results = [m for m in last["messages"] if m["role"] == "tool"]
    assert results, "Codex's tool output reached the upstream as a tool result"
