"""LiteLLM's proxy for comparison: its own venv under bench/, and a config aimed at the fake upstream.

python bench/litellm_setup.py      # install now (otherwise bench/gateway.py does it on first run)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from processes import BenchError

BENCH_DIR = Path(__file__).resolve().parent
VENV = BENCH_DIR / ".venv-litellm"  # gitignored
MASTER_KEY = "sk-bench-client-key"  # LiteLLM refuses to start without one; the wrk scripts send it

CONFIG_TEMPLATE = """\
# Written by bench/litellm_setup.py: every model points at the fake upstream.
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {upstream}/v1
      api_key: bench-key
  - model_name: llama-3.1-8b
    litellm_params:
      model: openai/llama-3.1-8b
      api_base: {upstream}/v1
      api_key: bench-key
  - model_name: claude-sonnet-4-6
    litellm_params:
      model: anthropic/claude-sonnet-4-6
      api_base: {upstream}
      api_key: bench-key
litellm_settings:
  telemetry: false
  # Anthropic-dialect requests to an openai/ model go to Chat Completions, as driftgate's do
  # (LiteLLM's default for them is the Responses API).
  use_chat_completions_url_for_anthropic_messages: true
router_settings:
  disable_cooldowns: true
general_settings:
  master_key: {master_key}
"""


def litellm_binary() -> Path:
    """The `litellm` console script inside the benchmark's venv."""
    return VENV / "bin" / "litellm"


def ensure_litellm() -> Path:
    """Create bench/.venv-litellm and `pip install 'litellm[proxy]'` into it when missing."""
    binary = litellm_binary()
    if binary.exists():
        return binary
    print(f"installing LiteLLM into {VENV} (one time, a few minutes)", flush=True)
    steps = [
        [sys.executable, "-m", "venv", str(VENV)],
        [str(VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]"],
    ]
    for cmd in steps:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"`{' '.join(cmd)}` took over 30 minutes") from exc
        if done.returncode != 0:
            raise BenchError(f"`{' '.join(cmd)}` failed:\n{done.stderr[-2000:]}")
    if not binary.exists():
        raise BenchError(f"pip installed litellm but {binary} is missing")
    return binary


def write_config(path: Path, upstream: str) -> Path:
    """Write LiteLLM's config.yaml pointing openai/ and anthropic/ models at `upstream`."""
    path.write_text(CONFIG_TEMPLATE.format(upstream=upstream.rstrip("/"), master_key=MASTER_KEY))
    return path


def litellm_env(home: Path, path_var: str) -> dict[str, str]:
    """A clean environment: no real keys, no remote cost-map fetch, quiet logs."""
    return {
        "PATH": path_var,
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES": "True",
    }


def litellm_argv(config: Path, port: int) -> list[str]:
    """The command that starts LiteLLM's proxy (one uvicorn worker, its default)."""
    return [
        str(litellm_binary()),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


if __name__ == "__main__":
    print(ensure_litellm())
