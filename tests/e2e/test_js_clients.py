"""Real JS clients of the Responses API through the gateway: the Node `openai` SDK and the AI SDK.

The packages come from package.json (npm ci). DRIFTGATE_NODE_MODULES points at another
node_modules holding them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI

ROOT = Path(__file__).parents[2]
SCRIPT = Path(__file__).parent / "js" / "responses_clients.mjs"
NEEDED = ("openai", "@ai-sdk/openai", "ai")


def node_modules() -> Path:
    found = Path(os.environ.get("DRIFTGATE_NODE_MODULES") or ROOT / "node_modules")
    missing = [p for p in NEEDED if not (found / p / "package.json").exists()]
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    if missing:
        pytest.skip(f"{', '.join(missing)} not in {found}: run `npm ci` (package.json lists them)")
    return found


@pytest.mark.parametrize("kind", ["anthropic", "chat", "responses"])
def test_node_openai_sdk_and_ai_sdk_default_model(
    kind: str, gateway_factory: Callable[..., Any], tmp_path: Path
) -> None:
    modules = node_modules()
    fake: Any = (
        FakeAnthropic() if kind == "anthropic" else FakeOpenAI(serves_responses=kind == "responses")
    )
    fake.start()
    try:
        gw = gateway_factory(backends=[fake])
        model = {"anthropic": "claude-sonnet-4-6", "chat": "gpt-4o", "responses": "gpt-4.1"}[kind]
        (tmp_path / "node_modules").symlink_to(modules)
        script = tmp_path / SCRIPT.name
        shutil.copy(SCRIPT, script)
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "GATEWAY_URL": gw.url,
            "MODEL": model,
        }
        run = subprocess.run(
            ["node", str(script)], env=env, capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0, run.stderr[-2000:]
        out = json.loads(run.stdout.strip().splitlines()[-1])
    finally:
        fake.stop()
    assert out["node_text"] == "echo: hello from node"
    assert out["node_events"][:2] == ["response.created", "response.in_progress"]
    assert out["node_events"][-1] == "response.completed"
    assert out["ai_text"] == "echo: hello from the ai sdk"
    assert (
        out["ai_usage"]["outputTokens"] > 0
        and out["ai_usage"]["inputTokenDetails"]["cacheReadTokens"] > 0
    )
    assert out["ai_stream_text"] == "echo: streaming from the ai sdk"
    paths = {r.path for r in fake.requests}
    expected = {
        "anthropic": "/v1/messages",
        "chat": "/v1/chat/completions",
        "responses": "/v1/responses",
    }
    assert paths == {expected[kind]}
