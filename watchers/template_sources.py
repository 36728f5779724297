"""Where the approved templates a watcher compares against are read from: a directory or the target repo."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import git

from driftgate.proxy.errors import TemplateError
from driftgate.proxy.templates import BUNDLED_DIR
from driftgate.watchers.gitrepo import Checkout

TEMPLATES_PATH = "proxy/templates"


class TemplateSource(Protocol):
    """Where the current (approved) templates are read from."""

    def read(self, template: str) -> dict[str, Any]:
        """The current document of `template`."""
        ...


def template_facts(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The derived facts a template holds, in the same shape extractors report them."""
    facts: dict[str, Any] = {}
    source = doc.get("source")
    if doc.get("kind") == "client" and isinstance(source, dict):
        facts["version"] = source.get("version")
    if isinstance(doc.get("models"), dict):
        facts["models"] = sorted(doc["models"])
    api = doc.get("api")
    if isinstance(api, dict):
        facts["betas"] = list(api.get("betas", []))
        facts["api_version"] = api.get("version")
    if isinstance(doc.get("tools"), dict):
        facts["tools"] = {k: list(v) for k, v in doc["tools"].items()}
    client = doc.get("client")
    if isinstance(client, dict) and "engines_node" in client:
        facts["engines_node"] = client["engines_node"]
    return facts


def _parse(text: str, origin: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{origin}: not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("source"), dict):
        raise TemplateError(f"{origin}: not a template (no source object)")
    return doc


@dataclass(frozen=True)
class DirectoryTemplates:
    """Templates in a directory: the bundled ones by default."""

    directory: Path = BUNDLED_DIR

    def read(self, template: str) -> dict[str, Any]:
        """Parse `<directory>/<template>.json`; TemplateError when missing or not a template."""
        path = self.directory / f"{template}.json"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise TemplateError(f"{path}: template not found") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(f"{path}: cannot read template: {exc}") from exc
        return _parse(text, str(path))


@dataclass
class RepoTemplates:
    """Templates on the target repository's default branch, read from a fetched checkout."""

    checkout: Checkout
    default_branch: Callable[[], str]
    _repo: git.Repo | None = field(default=None, init=False)
    _branch: str | None = field(default=None, init=False)

    def read(self, template: str) -> dict[str, Any]:
        """The approved `template` as merged on the default branch (fetched once per pass)."""
        if self._repo is None or self._branch is None:
            self._branch = self.default_branch()
            self._repo = self.checkout.sync()
        ref = f"refs/remotes/origin/{self._branch}:{TEMPLATES_PATH}/{template}.json"
        origin = f"{self._branch}:{TEMPLATES_PATH}/{template}.json"
        try:
            text = str(self._repo.git.show(ref))
        except git.GitCommandError as exc:
            raise TemplateError(f"{origin}: template not found in the target repository") from exc
        return _parse(text, origin)
