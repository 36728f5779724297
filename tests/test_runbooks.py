"""The runbooks' commands: every `driftgate ...` line parses with the real CLI, the rollback
procedure runs for real in a scratch repository, the systemd unit is a valid unit for the CLI."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from driftgate.proxy.cli import build_parser
from driftgate.proxy.templates import BUNDLED_DIR

ROOT = Path(__file__).resolve().parents[1]
RUNBOOKS = ROOT / "runbooks"
FENCE = re.compile(
    r"^(?:[ \t]*<!-- runbook-test: ([\w-]+) -->\n)?([ \t]*)```(\w*)\n(.*?)^\2```", re.M | re.S
)
EXPECTED = {"canary.md", "silent-watcher.md", "credentials.md", "self-hosted.md", "rollback.md"}


def blocks(kind: str | None = None) -> list[tuple[str, str | None, str, str]]:
    """(file, test marker, info string, body) of every fenced block."""
    out = []
    for path in sorted(RUNBOOKS.glob("*.md")):
        for m in FENCE.finditer(path.read_text()):
            if kind is None or m.group(3) == kind:
                body = textwrap.dedent(m.group(4))
                out.append((path.name, m.group(1), m.group(3), body))
    return out


def driftgate_lines(body: str) -> list[list[str]]:
    lines = []
    for line in body.replace("\\\n", " ").splitlines():
        line = re.sub(r"<\([^)]*\)", "OLD", line.strip())
        if line.startswith("driftgate "):
            lines.append(shlex.split(line))
        elif "/bin/driftgate " in line and line.startswith("ExecStart="):
            lines.append(["driftgate", *shlex.split(line.split("/bin/driftgate ", 1)[1])])
    return lines


def test_the_runbooks_exist_and_the_index_lists_them() -> None:
    names = {p.name for p in RUNBOOKS.glob("*.md")}
    assert names >= EXPECTED
    index = (RUNBOOKS / "README.md").read_text()
    for name in names - {"README.md"}:
        assert f"]({name})" in index, f"runbooks/README.md does not link {name}"


def test_every_driftgate_command_in_a_runbook_parses() -> None:
    parser = build_parser()
    checked = 0
    for name, _marker, _info, body in blocks():
        for words in driftgate_lines(body):
            try:
                parser.parse_args(words[1:])
            except SystemExit as exc:
                raise AssertionError(f"{name}: `{' '.join(words)}` does not parse") from exc
            checked += 1
    assert checked >= 10


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_rollback_procedure_reverts_a_bad_template(tmp_path: Path) -> None:
    [(_, _, _, script)] = [b for b in blocks("sh") if b[1] == "rollback"]
    origin, work = tmp_path / "origin.git", tmp_path / "work"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q", "--bare", str(origin)], check=True)
    subprocess.run([*git, "clone", "-q", str(origin), str(work)], check=True)
    templates = work / "proxy" / "templates"
    shutil.copytree(BUNDLED_DIR, templates, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    good = (templates / "anthropic.json").read_text()
    subprocess.run([*git, "-C", str(work), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-qm", "templates"], check=True)
    bad = good.replace('"claude-opus-4-5"', '"claude-opus-4-5-gone"', 1)
    assert bad != good
    (templates / "anthropic.json").write_text(bad)
    subprocess.run([*git, "-C", str(work), "commit", "-qam", "bad drift"], check=True)
    subprocess.run([*git, "-C", str(work), "push", "-q", "origin", "HEAD:main"], check=True)
    subprocess.run(["git", "-C", str(work), "branch", "-q", "-u", "origin/main"], check=True)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "DRIFTGATE_HOME": str(tmp_path / "home"),
    }
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert (templates / "anthropic.json").read_text() == good
    assert "claude-opus-4-5-gone" in run.stdout  # the diff shows what the revert takes back


def test_the_systemd_unit_runs_the_daemon() -> None:
    [(_, _, _, unit)] = [b for b in blocks("ini") if b[1] == "systemd-unit"]
    parsed = configparser.ConfigParser(strict=False, interpolation=None)
    parsed.optionxform = str  # type: ignore[assignment,method-assign]
    parsed.read_string(unit)
    service = parsed["Service"]
    assert service["ExecStart"].endswith("/bin/driftgate daemon")
    assert service["KillSignal"] == "SIGTERM"
    assert "EnvironmentFile" in service and "key" not in service.get("Environment", "").lower()
    [words] = driftgate_lines(unit)
    build_parser().parse_args(words[1:])
