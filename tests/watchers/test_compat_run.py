"""`driftgate compat run` against a package published to the test Verdaccio whose bin is a small
node script sending a scripted request to ANTHROPIC_BASE_URL."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.npm_fixtures import Verdaccio, unique_package

pytestmark = pytest.mark.verdaccio

CLI = """#!/usr/bin/env node
const base = process.env.ANTHROPIC_BASE_URL;
const body = {model: "claude-sonnet-4-6", max_tokens: 16, speed: "fast",
  messages: [{role: "user", content: process.argv[2] || "hi"}]};
fetch(base + "/v1/messages", {method: "POST", body: JSON.stringify(body), headers: {
  "content-type": "application/json", "x-api-key": process.env.ANTHROPIC_API_KEY,
  "anthropic-version": "2023-06-01", "anthropic-beta": "tools-2024-04-04",
  "user-agent": "compat-cli/1.0.0"}})
  .then((r) => r.json().then((j) => process.exit(r.ok && j.content ? 0 : 1)))
  .catch(() => process.exit(1));
"""


def test_a_release_runs_direct_through_the_gateway_and_translated(
    verdaccio: Verdaccio, tmp_path: Path
) -> None:
    package = unique_package("compat")
    verdaccio.publish_package(package, "1.0.0", {"cli.js": CLI},
                              package_json_extra={"bin": {"compat-cli": "cli.js"}})  # fmt: skip
    home = tmp_path / "home"
    env = {"DRIFTGATE_HOME": str(home), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, "-m", "driftgate.proxy.cli", "compat", "run", f"{package}@1.0.0",
         "--json", "--registry", verdaccio.url],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr + run.stdout
    report = json.loads(run.stdout)
    assert report["package"] == package and report["version"] == "1.0.0"
    assert report["direct"] == {"completed": True}
    assert report["through_gateway"]["completed"] is True
    assert "body.speed" not in report["through_gateway"]["dropped"]  # same dialect: forwarded
    assert report["translated"] == {"completed": True, "backend_kind": "openai"}
    with sqlite3.connect(home / "shapes.sqlite3") as db:  # the runs fed the shape log
        families = {f for (f,) in db.execute("SELECT family FROM shapes")}
    assert families == {"compat-cli"}


def test_a_spec_without_a_version_is_refused(tmp_path: Path) -> None:
    env = {"DRIFTGATE_HOME": str(tmp_path), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "driftgate.proxy.cli", "compat", "run", "left-pad"],
                         env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 2 and "PACKAGE@VERSION" in run.stderr
