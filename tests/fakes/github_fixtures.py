"""Pytest fixtures for the fake GitHub REST API and the real bare git repository behind it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from driftgate.proxy.templates import BUNDLED_DIR
from tests.fakes.github_api import FakeGitHub
from tests.fakes.github_git import seed_origin


def bundled_template_files() -> dict[str, str]:
    """The bundled templates and schemas, keyed by their path in the repository."""
    return {
        f"proxy/templates/{p.name}": p.read_text(encoding="utf-8")
        for p in sorted(BUNDLED_DIR.glob("*.json"))
    }


@pytest.fixture
def git_origin(tmp_path: Path) -> Path:
    """A bare git repository whose `main` holds proxy/templates/*.json as bundled."""
    origin = tmp_path / "origin.git"
    scratch = tmp_path / "git-scratch"
    scratch.mkdir()
    seed_origin(origin, scratch, bundled_template_files())
    return origin


@pytest.fixture
def github_api(git_origin: Path, tmp_path: Path) -> Iterator[FakeGitHub]:
    """The fake GitHub API serving `driftgate-test/templates` (origin: `git_origin`).

    Fails the test at teardown if any response it sent did not match GitHub's OpenAPI schema.
    """
    scratch = tmp_path / "github-scratch"
    scratch.mkdir()
    gh = FakeGitHub(git_origin, scratch).start()
    try:
        yield gh
    finally:
        gh.stop()
    if gh.validation_errors:
        pytest.fail(
            "fake GitHub sent responses GitHub would not: " + " | ".join(gh.validation_errors)
        )
