"""`driftgate changelog` against Verdaccio holding several releases: facts per release, what
changed against the one before, oldest first; the second run reads the cache, not the tarballs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.npm_fixtures import Verdaccio, unique_package
from tests.fakes.sdk_packages import anthropic_sdk_files, anthropic_with

pytestmark = pytest.mark.verdaccio


def _changelog(home: Path, registry: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"DRIFTGATE_HOME": str(home), "HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "driftgate.proxy.cli", "changelog", *args, "--registry", registry,
         "--extractor", "anthropic-sdk"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_releases_oldest_first_with_what_changed(verdaccio: Verdaccio, tmp_path: Path) -> None:
    package = unique_package("changelog")
    verdaccio.publish_package(package, "1.0.0", anthropic_sdk_files())
    verdaccio.publish_package(package, "1.1.0", anthropic_with(add_models=["claude-new-1"]))
    verdaccio.publish_package(
        package, "1.2.0", anthropic_with(add_models=["claude-new-1"], add_betas=["beta-x-2026"])
    )
    verdaccio.publish_package(package, "1.3.0", anthropic_sdk_files(api_version="2027-01-01"))
    run = _changelog(tmp_path, verdaccio.url, package, "--last", "3", "--json")
    assert run.returncode == 0, run.stderr
    doc: dict[str, Any] = json.loads(run.stdout)
    assert doc["package"] == package
    assert [r["version"] for r in doc["releases"]] == ["1.1.0", "1.2.0", "1.3.0"]
    first, second, third = doc["releases"]
    assert first["changes"] == {"models": {"added": ["claude-new-1"]}}  # against 1.0.0
    assert second["changes"] == {"betas": {"added": ["beta-x-2026"]}}
    assert third["changes"]["models"] == {"removed": ["claude-new-1"]}
    assert third["changes"]["betas"] == {"removed": ["beta-x-2026"]}
    assert third["changes"]["api_version"]["to"] == "2027-01-01"
    assert "claude-new-1" in first["facts"]["models"]

    cached = sorted(p.name for p in (tmp_path / "cache" / "changelog").rglob("*.json"))
    assert cached == ["1.0.0.json", "1.1.0.json", "1.2.0.json", "1.3.0.json"]
    text = _changelog(tmp_path, verdaccio.url, package, "--last", "10")
    assert text.returncode == 0, text.stderr
    assert "1.0.0" in text.stdout and "first release shown in full" in text.stdout
    assert "models: +claude-new-1" in text.stdout
    markdown = _changelog(tmp_path, verdaccio.url, package, "--last", "2", "--markdown")
    assert "| 1.3.0 |" in markdown.stdout and "**api_version**" in markdown.stdout


def test_a_package_without_an_extractor_says_how_to_name_one(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "driftgate.proxy.cli", "changelog", "left-pad"],
        env={"DRIFTGATE_HOME": str(tmp_path), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2 and "--extractor" in run.stderr
