"""The README's five minutes with the watcher, run as written against a real npm registry (Verdaccio)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.fakes.npm_fixtures import Verdaccio
from tests.fakes.sdk_packages import (
    CLAUDE_CODE_EXTRA,
    anthropic_with,
    claude_code_files,
    openai_sdk_files,
)

from .commands import SHELL_LANGS, driftgate_commands, run
from .markdown import ROOT, blocks

README = ROOT / "README.md"
# The packages `driftgate watch npm` follows by default, each with a release that has drift.
VERSION = "99.0.0"


def _publish_once(verdaccio: Verdaccio) -> None:
    releases = {
        "@anthropic-ai/sdk": (anthropic_with(add_models=["claude-docs-9"]), None),
        "openai": (openai_sdk_files(models=["gpt-4o", "gpt-docs-9"]), None),
        "@anthropic-ai/claude-code": (claude_code_files(), CLAUDE_CODE_EXTRA),
    }
    for name, (files, extra) in releases.items():
        known = httpx.get(f"{verdaccio.url}{name.replace('/', '%2f')}", timeout=10)
        if known.status_code == 200 and VERSION in known.json().get("versions", {}):
            continue  # this worker's registry already has it (the fixture lives for the session)
        verdaccio.publish_package(name, VERSION, files, package_json_extra=extra)


@pytest.mark.verdaccio
def test_the_readme_watcher_commands_run_against_a_registry(
    verdaccio: Verdaccio, tmp_path: Path
) -> None:
    (block,) = [b for b in blocks(README) if b.lang in SHELL_LANGS and "--dry-run" in b.text]
    commands = driftgate_commands(block)
    assert commands and all("--dry-run" in c.argv for c in commands)
    _publish_once(verdaccio)
    for cmd in commands:
        done = run(cmd, tmp_path, extra_env={"npm_config_registry": verdaccio.url})
        assert done.returncode == 0, f"{cmd.where}: exit {done.returncode}\n{done.stderr}"
        assert VERSION in done.stdout
        if "--json" not in cmd.argv:
            assert "would open a pull request" in done.stdout
    # A dry run records nothing: no watcher state, nothing cloned.
    assert not (tmp_path / ".driftgate" / "state").exists()
    assert not (tmp_path / ".driftgate" / "work").exists()
