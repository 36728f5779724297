"""`driftgate compat run` against packages published to the test Verdaccio whose bin is a small
node script: one like `claude -p` (a scripted Messages request to ANTHROPIC_BASE_URL), one like
`codex exec` (a scripted, streamed Responses request to the base URL of the model provider in
$CODEX_HOME/config.toml); the real Codex CLI when it is installed; and `watch npm --compat`
feeding the configured shape log."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from driftgate.watchers.compat.run import compat_run, findings, render_markdown
from driftgate.watchers.npm.command import run_watch_npm
from driftgate.watchers.npm.settings import WatchFlags
from tests.fakes.npm_fixtures import Verdaccio, unique_package
from tests.fakes.sdk_packages import CLAUDE_CODE_EXTRA, claude_code_files

ROOT = Path(__file__).resolve().parents[2]

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

# Like `codex exec`: the model provider comes from $CODEX_HOME/config.toml, the key from the env
# variable it names; the Responses stream must end in response.completed.
CODEX = r"""#!/usr/bin/env node
const fs = require("fs");
const path = require("path");
const args = process.argv.slice(2);
if (args[0] !== "exec" || !args.includes("--skip-git-repo-check")) process.exit(2);
const config = fs.readFileSync(path.join(process.env.CODEX_HOME, "config.toml"), "utf8");
const get = (key) => (new RegExp("^" + key + ' = "([^"]*)"', "m").exec(config) || [])[1];
if (get("wire_api") !== "responses") process.exit(3);
const body = {model: get("model"), instructions: "You are a coding agent.", stream: true,
  input: [{type: "message", role: "user", content: [{type: "input_text", text: args[args.length - 1]}]}],
  tools: [{type: "function", name: "shell", description: "Run a command.", strict: false,
           parameters: {type: "object", properties: {command: {type: "string"}}}},
          {type: "web_search"}],
  tool_choice: "auto", parallel_tool_calls: false, store: false, include: [],
  prompt_cache_key: "compat-1", temperature: 1.5};
fetch(get("base_url") + "/responses", {method: "POST", body: JSON.stringify(body), headers: {
  "content-type": "application/json", "authorization": "Bearer " + process.env[get("env_key")],
  "accept": "text/event-stream", "user-agent": "codex_exec/9.9.9 (compat test)"}})
  .then((r) => r.text().then((text) => {
    const types = text.split("\n").filter((l) => l.startsWith("data: "))
      .map((l) => JSON.parse(l.slice(6)).type);
    process.exit(r.ok && types[types.length - 1] === "response.completed" ? 0 : 1);
  }))
  .catch(() => process.exit(1));
"""


def _names(items: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {i["name"]: i["found_by"] for i in items}


def test_a_header_the_gateway_names_is_the_same_finding_as_the_comparisons() -> None:
    # The gateway says "header:x-trace" in x-driftgate-dropped; the comparison says "header.x-trace".
    items = findings(["header.x-trace", "body.speed"], ["header:x-trace", "speed"],
                     "x-driftgate-dropped")  # fmt: skip
    assert _names(items) == {
        "body.speed": ["upstream", "x-driftgate-dropped"],
        "header.x-trace": ["upstream", "x-driftgate-dropped"],
    }


@pytest.mark.verdaccio
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
    assert (report["client"], report["speaks"]) == ("other", "anthropic")
    assert report["direct"] == {"completed": True}
    through = report["through_gateway"]
    assert through["completed"] is True and through["backend_kind"] == "anthropic"
    assert "body.speed" not in _names(through["dropped"])  # same dialect: forwarded
    translated = report["translated"]
    assert translated["completed"] is True and translated["backend_kind"] == "openai"
    # Chat Completions has no `speed`: the gateway says it dropped it, and the report says so.
    assert _names(translated["dropped"])["body.speed"] == ["x-driftgate-dropped"]
    with sqlite3.connect(home / "shapes.sqlite3") as db:  # the runs fed the shape log
        families = {f for (f,) in db.execute("SELECT family FROM shapes")}
    assert families == {"compat-cli"}


@pytest.mark.verdaccio
def test_a_codex_like_release_runs_responses_direct_same_dialect_and_to_an_anthropic_backend(
    verdaccio: Verdaccio, tmp_path: Path
) -> None:
    package = unique_package("fake") + "-codex"  # named like @openai/codex: run as `codex exec`
    verdaccio.publish_package(package, "0.171.0", {"codex.js": CODEX},
                              package_json_extra={"bin": {"codex": "codex.js"}})  # fmt: skip
    shapes = tmp_path / "shapes.sqlite3"
    report = compat_run(f"{package}@0.171.0", verdaccio.url, shapes)
    assert (report["client"], report["speaks"]) == ("codex", "responses")
    assert report["direct"] == {"completed": True}
    through = report["through_gateway"]
    assert through["completed"] is True and through["backend_kind"] == "openai"
    # Forwarded as sent: every body field arrives as the same JSON type. (Node's fetch adds
    # accept, accept-language and sec-fetch-mode headers, which the gateway does not pass on.)
    assert not [d for d in through["dropped"] if d["name"].startswith("body.")], through
    assert through["changed"] == [], through
    translated = report["translated"]
    assert translated["completed"] is True and translated["backend_kind"] == "anthropic"
    dropped = _names(translated["dropped"])
    assert dropped["tools.web_search"] == ["x-driftgate-dropped"]  # a hosted tool Anthropic lacks
    (temperature,) = [c for c in translated["changed"] if c["name"] == "body.temperature"]
    assert temperature["found_by"] == ["x-driftgate-adjusted"]
    assert temperature["details"] == ["1.5->1"]
    section = render_markdown(report)
    assert "translated (Anthropic-kind backend): completed" in section
    assert "`tools.web_search` [x-driftgate-dropped]" in section
    with sqlite3.connect(shapes) as db:
        rows = set(db.execute("SELECT family, endpoint FROM shapes"))
    assert ("codex", "responses") in {(f, e.rsplit("/", 1)[-1]) for f, e in rows}


def test_the_real_codex_cli_runs_through_the_compat_machinery(tmp_path: Path) -> None:
    codex = Path(os.environ.get("DRIFTGATE_CODEX") or ROOT / "node_modules" / ".bin" / "codex")
    if not codex.exists():
        pytest.skip(
            f"the Codex CLI is not installed at {codex}: run `npm ci` (package.json lists "
            "@openai/codex), or set DRIFTGATE_CODEX"
        )
    report = compat_run("@openai/codex@0.171.0", "unused", tmp_path / "shapes.sqlite3",
                        installed=codex)  # fmt: skip
    assert report["direct"]["completed"], report
    assert report["through_gateway"]["completed"], report
    assert report["translated"] == {**report["translated"], "completed": True,
                                    "backend_kind": "anthropic"}  # fmt: skip


@pytest.mark.verdaccio
def test_watch_npm_compat_feeds_the_configured_shape_log(
    verdaccio: Verdaccio, tmp_path: Path
) -> None:
    package = unique_package("cc")
    files = {**claude_code_files({"Bash": ["command"], "ToolSearch": ["query"]}), "cli.js": CLI}
    verdaccio.publish_package(package, "2.1.400", files,
                              {**CLAUDE_CODE_EXTRA, "bin": {"compat-cli": "cli.js"}})  # fmt: skip
    home = tmp_path / "dg"
    home.mkdir()
    configured = tmp_path / "elsewhere" / "live-shapes.sqlite3"
    (home / "config.toml").write_text(
        f'[watch]\nregistry = "{verdaccio.url}"\npackages = [{{name = "{package}", '
        'template = "claude-code", extractor = "claude-code"}]\n\n'
        f'[shapes]\npath = "{configured}"\n'
    )
    env = {"DRIFTGATE_HOME": str(home), "HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    out, err = io.StringIO(), io.StringIO()
    code = run_watch_npm(WatchFlags(compat=True), config_path=None, env=env, once=True,
                         dry_run=True, as_json=False, out=out, err=err)  # fmt: skip
    assert code == 0, err.getvalue() + out.getvalue()
    assert f"### Compat run: `{package}@2.1.400`" in out.getvalue()
    with sqlite3.connect(configured) as db:  # the file `watch shapes` reads
        assert {f for (f,) in db.execute("SELECT family FROM shapes")} == {"compat-cli"}
    assert not (home / "shapes.sqlite3").exists() and not (tmp_path / "shapes.sqlite3").exists()


def test_a_spec_without_a_version_is_refused(tmp_path: Path) -> None:
    env = {"DRIFTGATE_HOME": str(tmp_path), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "driftgate.proxy.cli", "compat", "run", "left-pad"],
                         env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 2 and "PACKAGE@VERSION" in run.stderr
