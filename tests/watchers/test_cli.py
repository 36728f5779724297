"""`driftgate watch npm` and `driftgate template ...` as a user types them."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from driftgate.proxy.cli import main
from driftgate.proxy.templates import BUNDLED_DIR
from driftgate.watchers.npm.command import run_forever
from tests.fakes.npm_fixtures import Verdaccio, unique_package
from tests.fakes.sdk_packages import anthropic_with, bundled, watch_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private DRIFTGATE_HOME and HOME (no ~/.npmrc, no config) for commands run in-process."""
    monkeypatch.setenv("DRIFTGATE_HOME", str(tmp_path / "dg"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("npm_config_registry", raising=False)
    monkeypatch.delenv("NPM_CONFIG_REGISTRY", raising=False)
    return tmp_path / "dg"


def test_watch_npm_help_reads_like_docs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["watch", "npm", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--package",
        "--once",
        "--dry-run",
        "--json",
        "--repo",
        "--workdir",
        "--github-api-url",
        "--on-trivial",
        "--auto-merge",
        "--tag",
        "--interval",
    ):
        assert flag in text
    assert "Examples:" in text and "driftgate watch npm --once --dry-run" in text
    assert "GITHUB_TOKEN" in text and "[watch]" in text


def test_bare_watch_and_template_print_their_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watch"]) == 2
    assert "npm" in capsys.readouterr().out
    assert main(["template"]) == 2
    out = capsys.readouterr().out
    assert "validate" in out and "diff" in out


def test_template_validate_the_bundled_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["template", "validate"]) == 0
    out = capsys.readouterr().out
    assert "3 valid, 0 invalid" in out and "sha256:" in out


def test_template_validate_a_directory_skips_schemas_and_reports_a_broken_template(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = bundled("openai")
    del broken["models"]
    (tmp_path / "openai.json").write_text(json.dumps(broken))
    (tmp_path / "anthropic.json").write_text(json.dumps(bundled("anthropic")))
    (tmp_path / "upstream.schema.json").write_text(
        (BUNDLED_DIR / "upstream.schema.json").read_text()
    )
    assert main(["template", "validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "openai.json" in out and "'models' is a required property" in out
    assert "1 valid, 1 invalid" in out


def test_template_diff_prints_the_pr_markdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = bundled("anthropic"), bundled("anthropic")
    new["models"]["claude-new-1"] = {"needs_review": True}
    del new["models"]["claude-opus-4-5"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    assert main(["template", "diff", str(tmp_path / "old.json"), str(tmp_path / "new.json")]) == 0
    out = capsys.readouterr().out
    assert "breaking" in out and "+1 model, -1 model" in out
    assert "| added | `/models/claude-new-1` |" in out and "```diff" in out


def test_template_diff_of_a_non_json_file_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.json").write_text("{nope")
    assert (
        main(["template", "diff", str(tmp_path / "bad.json"), str(BUNDLED_DIR / "openai.json")])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("driftgate: ") and "not valid JSON" in err and "Traceback" not in err


def test_publishing_without_a_repo_or_a_token_says_what_to_do(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["watch", "npm", "--once"]) == 2
    assert "--repo OWNER/NAME" in capsys.readouterr().err
    assert main(["watch", "npm", "--once", "--repo", "o/r"]) == 2
    assert "GITHUB_TOKEN" in capsys.readouterr().err
    # The loop refuses up front rather than failing every hour.
    assert main(["watch", "npm", "--interval", "1"]) == 2
    assert "--repo OWNER/NAME" in capsys.readouterr().err


def test_bad_watch_config_is_a_clear_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home.mkdir(parents=True)
    (home / "config.toml").write_text('[watch]\non_trivial = "sometimes"\n')
    assert main(["watch", "npm", "--once", "--dry-run"]) == 2
    assert "on_trivial must be one of record, pr" in capsys.readouterr().err
    (home / "config.toml").write_text('[watch]\npackages = [{name = "left-pad"}]\n')
    assert main(["watch", "npm", "--once", "--dry-run"]) == 2
    assert "no extractor is registered for 'left-pad'" in capsys.readouterr().err
    (home / "config.toml").write_text('[watch]\npackages = [{name = "x", extractor = "nope"}]\n')
    assert main(["watch", "npm", "--once", "--dry-run"]) == 2
    assert "no extractor is called 'nope'" in capsys.readouterr().err
    # The same OWNER/NAME rule as the publisher, refused as config before anything runs.
    for repo in ("owner/", "/name", "a/b/c"):
        assert main(["watch", "npm", "--once", "--repo", repo]) == 2
        assert f"--repo must look like OWNER/NAME, got {repo!r}" in capsys.readouterr().err


@pytest.mark.verdaccio
def test_dry_run_json_reports_versions_facts_and_the_pr(
    verdaccio: Verdaccio, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = unique_package()
    verdaccio.publish_package(name, "1.13.0", anthropic_with(add_models=["claude-new-1"]))
    watch_config(home, verdaccio.url, [(name, "anthropic", "anthropic-sdk")])
    assert main(["watch", "npm", "--once", "--dry-run", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["dry_run"] is True
    (pkg,) = report["packages"]
    assert pkg["package"] == name and pkg["status"] == "dry-run"
    assert pkg["versions"] == {"template": "1.12.0", "registry": "1.13.0"}
    assert {"models", "betas", "api_version"} <= set(pkg["facts"])
    assert pkg["pr"]["title"].endswith("1.12.0 -> 1.13.0: +1 model")
    assert pkg["pr"]["labels"] == ["drift", "drift:npm"] and "claude-new-1" in pkg["pr"]["body"]
    assert not (home / "state").exists()


@pytest.mark.verdaccio
def test_dry_run_text_shows_versions_and_the_pr_it_would_open(
    verdaccio: Verdaccio, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = unique_package()
    verdaccio.publish_package(name, "1.13.0", anthropic_with(add_models=["claude-new-1"]))
    watch_config(home, verdaccio.url, [(name, "anthropic", "anthropic-sdk")])
    assert main(["watch", "npm", "--once", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert (
        f"{name} -> anthropic.json: latest 1.13.0, template 1.12.0: would open a pull request"
        in out
    )
    assert "title: drift(anthropic):" in out and "labels: drift, drift:npm" in out
    assert "----- PR body -----" in out and "### Reviewer checklist" in out
    assert out.rstrip().endswith("1 package(s) checked: 1 would open a pull request.")


@pytest.mark.verdaccio
def test_verbose_prints_progress_to_stderr_and_json_stays_clean(
    verdaccio: Verdaccio, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = unique_package()
    verdaccio.publish_package(name, "1.13.0", anthropic_with(add_models=["claude-new-1"]))
    watch_config(home, verdaccio.url, [(name, "anthropic", "anthropic-sdk")])
    assert main(["watch", "npm", "--once", "--dry-run", "--json", "--verbose"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["ok"] is True
    lines = captured.err.splitlines()
    assert lines[0] == f"driftgate: {name}: asking for dist-tags (template has 1.12.0)"
    assert f"driftgate: {name}: latest is 1.13.0: fetching its metadata and tarball" in lines
    assert any("integrity verified" in line for line in lines)
    # Without --verbose and with stderr not a terminal (as in CI logs): no progress at all.
    assert main(["watch", "npm", "--once", "--dry-run", "--json"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.verdaccio
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_the_loop_runs_a_pass_and_stops_cleanly_on_ctrl_c_or_sigterm(
    verdaccio: Verdaccio, tmp_path: Path, stop: signal.Signals
) -> None:
    name = unique_package()
    verdaccio.publish_package(name, "1.13.0", anthropic_with(add_models=["claude-new-1"]))
    home = tmp_path / "dg"
    watch_config(home, verdaccio.url, [(name, "anthropic", "anthropic-sdk")])
    env = {
        **os.environ,
        "DRIFTGATE_HOME": str(home),
        "HOME": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("GITHUB_TOKEN", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "driftgate.proxy.cli",
            "watch",
            "npm",
            "--dry-run",
            "--interval",
            "60",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # the first pass runs at once; its summary line ends the report
            seen.append(line)
            if "package(s) checked" in line or "failed" in line:
                break
        assert any("would open a pull request" in line for line in seen), "".join(seen)
        proc.send_signal(stop)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "every 60 min" in err and "stopped" in err and "Traceback" not in err


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_the_loop_runs_a_late_first_pass_and_stops_on_a_signal_from_another_thread(
    stop: signal.Signals,
) -> None:
    # The scheduler starting 30 s after the first pass was due is a loaded machine: APScheduler's
    # default misfire grace (1 s) skipped that pass. The signal comes from the pass's own thread,
    # as a signal the kernel hands to any thread may.
    ran: list[str] = []
    err = io.StringIO()

    def job() -> None:
        ran.append(threading.current_thread().name)
        os.kill(os.getpid(), stop)

    def late() -> datetime:
        return datetime.now(UTC) - timedelta(seconds=30)

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    rescue = threading.Timer(60, lambda: os.kill(os.getpid(), stop))  # the pass never ran
    rescue.start()
    try:
        assert run_forever(job, 60, err=err, now=late) == 0
    finally:
        rescue.cancel()
    assert len(ran) == 1 and ran[0] != threading.main_thread().name, err.getvalue()
    assert "stopped" in err.getvalue()
    assert {s: signal.getsignal(s) for s in before} == before  # the handlers are put back
