"""What an extractor is: package files in, facts (or the reasons they were not found) out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from driftgate.watchers.extractors.ts_declarations import strip_comments, union_literals
from driftgate.watchers.npm.tarball import PackageFiles


@dataclass(frozen=True)
class Extracted:
    """Facts read from one package version, and human sentences for what could not be read."""

    facts: Mapping[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


@runtime_checkable
class Extractor(Protocol):
    """Reads the facts one template needs from one npm package. Pure; never raises on missing data."""

    @property
    def name(self) -> str:
        """The extractor's own name, for reports."""
        ...

    @property
    def package(self) -> str:
        """The npm package it reads."""
        ...

    @property
    def template(self) -> str:
        """The template it feeds (e.g. "anthropic")."""
        ...

    def extract(self, files: PackageFiles, manifest: Mapping[str, Any]) -> Extracted:
        """Facts from the unpacked package and its package.json."""
        ...


def first_text(files: PackageFiles, paths: tuple[str, ...]) -> tuple[str, str] | None:
    """(path, text) of the first of `paths` the package ships, or None."""
    for path in paths:
        text = files.text(path)
        if text is not None:
            return path, text
    return None


def missing_file(paths: tuple[str, ...], wanted: str) -> str:
    """The problem sentence for a file that is not where the extractor looks."""
    return f"{' or '.join(paths)}: not in the package, so {wanted} could not be read (file moved?)"


def read_union(
    files: PackageFiles, paths: tuple[str, ...], type_name: str, fact: str, problems: list[str]
) -> list[str] | None:
    """The literals of `type_name` from the first of `paths`; None (and a problem) when not found."""
    found = first_text(files, paths)
    if found is None:
        problems.append(missing_file(paths, fact))
        return None
    path, text = found
    values = union_literals(strip_comments(text), type_name)
    if values is None:
        problems.append(f"{path}: type {type_name} not found (file moved or type renamed?)")
        return None
    if not values:
        problems.append(f"{path}: type {type_name} has no string literals any more")
        return None
    return values
