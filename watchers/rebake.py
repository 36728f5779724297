"""Rebake a template from extracted facts: derived fields replaced, curated fields kept, validated."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from driftgate.proxy.templates import validate_template
from driftgate.watchers.extractors import Extracted


@dataclass(frozen=True)
class Rebake:
    """The candidate template and what changed in its model set, with what could not be rebaked."""

    candidate: dict[str, Any]
    new_models: tuple[str, ...]
    removed_models: tuple[str, ...]
    problems: tuple[str, ...]


def new_model_entry() -> dict[str, Any]:
    """A model the SDK names but nobody has curated yet: facts empty, flagged for review."""
    return {
        "context_window": None,
        "max_output_tokens": None,
        "pricing": None,
        "capabilities": None,
        "needs_review": True,
    }


def _merge_order(current: Iterable[str], extracted: list[str]) -> list[str]:
    """Extracted items, known ones in their current order and new ones appended (small diffs)."""
    wanted = dict.fromkeys(extracted)
    kept = [x for x in current if x in wanted]
    return kept + [x for x in wanted if x not in kept]


def _string_list(facts: Mapping[str, Any], key: str, problems: list[str]) -> list[str] | None:
    """facts[key] as a non-empty list of strings, or None (an empty one is a problem, not a fact)."""
    if key not in facts:
        return None
    value = facts[key]
    if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
        problems.append(f"extractor gave {key!r} in an unexpected shape; kept the current value")
        return None
    if not value:
        problems.append(f"extractor found no {key}; kept the current value rather than emptying it")
        return None
    return value


def _rebake_upstream(
    doc: dict[str, Any], facts: Mapping[str, Any], problems: list[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    models = _string_list(facts, "models", problems)
    if models is not None:
        old: Mapping[str, Any] = doc.get("models", {})
        doc["models"] = {
            m: copy.deepcopy(old[m]) if m in old else new_model_entry()
            for m in _merge_order(old, models)
        }
        added = tuple(m for m in doc["models"] if m not in old)
        # Aliases are curated: one left pointing at a removed model is for the reviewer (the PR
        # lists it under the removals), not an extraction problem.
        removed = tuple(m for m in old if m not in doc["models"])
    api = doc.setdefault("api", {"betas": []})
    betas = _string_list(facts, "betas", problems)
    if betas is not None:
        api["betas"] = _merge_order(api.get("betas", []), betas)
    version = facts.get("api_version")
    if isinstance(version, str) and version:
        api["version"] = version
    for key in ("tools", "engines_node"):
        if key in facts:
            problems.append(f"fact {key!r} does not apply to an upstream template; ignored")
    return added, removed


def _rebake_client(doc: dict[str, Any], facts: Mapping[str, Any], problems: list[str]) -> None:
    tools = facts.get("tools")
    if tools is not None:
        if not isinstance(tools, Mapping) or not tools:
            problems.append("extractor found no tools; kept the current tool catalog")
        else:
            old: Mapping[str, list[str]] = doc.get("tools", {})
            doc["tools"] = {
                str(name): _merge_order(old.get(str(name), []), [str(f) for f in fields])
                for name, fields in tools.items()
            }
    node = facts.get("engines_node")
    if isinstance(node, str) and node:
        doc.setdefault("client", {})["engines_node"] = node
    for key in ("models", "betas", "api_version"):
        if key in facts:
            problems.append(f"fact {key!r} does not apply to a client template; ignored")


def rebake(
    current: Mapping[str, Any],
    extracted: Extracted,
    *,
    package: str,
    version: str,
    integrity: str | None,
    observed_at: str,
) -> Rebake:
    """The candidate for `current` after a release; raises TemplateError if it does not validate."""
    doc: dict[str, Any] = copy.deepcopy(dict(current))
    problems = list(extracted.problems)
    doc["source"] = {
        "package": package,
        "version": version,
        "integrity": integrity,
        "observed_at": observed_at,
    }
    shipped = extracted.facts.get("version")
    if shipped is not None and shipped != version:
        problems.append(
            f"package.json says version {shipped!r}, but the registry served it as {version!r}"
        )
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    if doc.get("kind") == "upstream":
        added, removed = _rebake_upstream(doc, extracted.facts, problems)
    elif doc.get("kind") == "client":
        _rebake_client(doc, extracted.facts, problems)
    validate_template(doc, f"rebaked {doc.get('name', '<template>')} from {package}@{version}")
    return Rebake(candidate=doc, new_models=added, removed_models=removed, problems=tuple(problems))
