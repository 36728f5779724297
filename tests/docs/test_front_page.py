"""README.md is a front page: two opening commands that work, under 300 lines, linking the whole manual."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from .commands import PROGRAM
from .markdown import ROOT, doc_pages
from .opening import (
    MAX_README_LINES,
    link_problems,
    main_job,
    manual_pages,
    opening_problems,
    section,
    unlinked_pages,
)

README = ROOT / "README.md"
DOCS = "Documentation"  # the README section that lists the manual's pages
LISTENING = re.compile(r"listening on (http://\S+)")


def test_readme_opens_with_install_and_run_then_the_test_command() -> None:
    assert opening_problems(README) == []


def test_readme_is_a_front_page() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; the manual lives in docs/"


def test_every_manual_page_is_linked_from_the_index_and_the_readme() -> None:
    pages = manual_pages()
    assert pages, "docs/ holds no pages"
    index = ROOT / "docs" / "README.md"
    for where, missing in (
        (index, unlinked_pages(index, pages)),
        (README, unlinked_pages(README, [*pages, index], section(README.read_text(), DOCS))),
    ):
        assert not missing, (
            f"{where.relative_to(ROOT)} does not link "
            + ", ".join(str(p.relative_to(ROOT)) for p in missing)
            + f": add one line for each to its list of pages (in the README: under ## {DOCS})"
        )


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_files_and_headings_that_exist(page: Path) -> None:
    assert link_problems(page) == []


def _serve(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """Start the command; return it and the URL from its start-up line."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    while True:
        try:
            line = lines.get(timeout=600)
        except queue.Empty:
            break
        m = LISTENING.search(line)
        if m:
            return proc, m.group(1)
        if line == "":
            break
    _stop(proc)
    assert proc.stderr is not None
    raise AssertionError(f"{argv} never said where it listens:\n{proc.stderr.read()}")


def _stop(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()


def _check_no_key_gateway(url: str) -> None:
    """What the README promises of a gateway with no config and no keys."""
    health = httpx.get(f"{url}/health", timeout=10).json()
    assert health["status"] == "no_backends"
    assert {t["name"] for t in health["templates"]} >= {"anthropic", "openai"}
    assert all(t["hash"].startswith("sha256:") for t in health["templates"])
    assert "driftgate backend add" in health["message"]
    answer = httpx.post(
        f"{url}/v1/messages",
        json={"model": "sonnet", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
        headers={"anthropic-version": "2023-06-01"},
        timeout=10,
    )
    assert answer.status_code == 404
    assert answer.json()["error"]["type"] == "not_found_error"


def _no_key_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "DRIFTGATE_HOME": str(home / ".driftgate"),
        "DRIFTGATE_PORT": "0",  # the documented 3456 may be taken here; env beats the default
        "LANG": "C.UTF-8",
    }


def test_the_main_job_command_runs_with_no_config_and_no_keys(tmp_path: Path) -> None:
    _, cmd = main_job(README)
    assert cmd.program == PROGRAM and cmd.argv == ("proxy",)
    program = Path(sys.executable).with_name("driftgate")
    proc, url = _serve([str(program), *cmd.argv], ROOT, _no_key_env(tmp_path))
    try:
        _check_no_key_gateway(url)
    finally:
        rc = _stop(proc)
    assert rc == 0


@pytest.mark.skipif(
    os.environ.get("DRIFTGATE_TEST_INSTALL") != "1",
    reason="installs from PyPI into a fresh venv (~40 s): DRIFTGATE_TEST_INSTALL=1 runs it",
)
@pytest.mark.timeout(900)  # a fresh venv and every dependency from PyPI: 40-90 s here
def test_the_opening_command_verbatim_in_a_fresh_copy(tmp_path: Path) -> None:
    block, _ = main_job(README)
    copy = tmp_path / "driftgate"
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file() and not src.is_symlink():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, copy / name)
    env = _no_key_env(tmp_path)
    proc, url = _serve(["bash", "-c", block.text], copy, env)
    try:
        _check_no_key_gateway(url)
    finally:
        rc = _stop(proc)
    assert rc in (0, -signal.SIGTERM, 128 + signal.SIGTERM)
