"""The real Claude Code CLI (npm @anthropic-ai/claude-code, pinned in package.json) through the
gateway to an OpenAI-kind backend: `claude -p "say hi"`, headless."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_upstream import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]


def _claude() -> str | None:
    local = ROOT / "node_modules" / ".bin" / "claude"
    return str(local) if local.exists() else shutil.which("claude")


CLAUDE = _claude()
pytestmark = pytest.mark.skipif(
    CLAUDE is None,
    reason="the Claude Code CLI is not installed (`npm ci` installs @anthropic-ai/claude-code "
    "into node_modules, as package.json pins it)",
)


def test_claude_p_through_the_gateway_to_an_openai_backend(
    gateway_factory: Callable[..., Any], fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    assert CLAUDE is not None
    gw = gateway_factory(backends=[fake_openai.backend(models=["claude-*"])])
    project = tmp_path / "project"
    project.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),  # no user settings, no login: the API key below is all it has
        "ANTHROPIC_BASE_URL": gw.url,
        "ANTHROPIC_API_KEY": "sk-ant-test-e2e-0000",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    run = subprocess.run(
        [CLAUDE, "-p", "say hi"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, f"stdout: {run.stdout[-2000:]}\nstderr: {run.stderr[-2000:]}"
    assert "say hi" in run.stdout  # the fake model echoes the last user turn
    chats = fake_openai.requests_to("/v1/chat/completions")
    assert chats, "the CLI never reached the OpenAI backend"
    roles = [m["role"] for m in chats[-1].json["messages"]]
    # Claude Code's environment block: a system message after the first user turn, kept there.
    assert roles[0] == "system" and "system" in roles[roles.index("user") :]
    assert chats[-1].json["tools"], "Claude Code's tools arrive as function tools"
