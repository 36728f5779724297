"""@anthropic-ai/claude-code -> claude-code.json: Node engine range and the tool catalog."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from driftgate.watchers.extractors.base import Extracted, missing_file
from driftgate.watchers.extractors.ts_declarations import (
    object_types,
    strip_comments,
    type_alias_body,
)
from driftgate.watchers.npm.tarball import PackageFiles

TOOLS_PATH = "sdk-tools.d.ts"
TOOLS_UNION = "ToolInputSchemas"
# These three interfaces are named after the file operation, the wire tool names are shorter.
TOOL_NAMES = {"FileEdit": "Edit", "FileRead": "Read", "FileWrite": "Write"}
_IDENT = re.compile(r"[A-Za-z_$][\w$]*")


def _shipped(files: PackageFiles, manifest: Mapping[str, Any], key: str) -> Any:
    """`manifest[key]`, else the same key of the package.json the tarball ships."""
    if key in manifest:
        return manifest[key]
    try:
        shipped = json.loads(files.text("package.json") or "{}")
    except ValueError:
        return None
    return shipped.get(key) if isinstance(shipped, dict) else None


def _engines_node(files: PackageFiles, manifest: Mapping[str, Any]) -> str | None:
    engines = _shipped(files, manifest, "engines")
    node = engines.get("node") if isinstance(engines, Mapping) else None
    return node if isinstance(node, str) and node.strip() else None


def tool_catalog(src: str, problems: list[str]) -> dict[str, list[str]]:
    """Tool name -> input field names, from the `*Input` declarations of a comment-stripped source."""
    declared = object_types(src, "Input")
    union = type_alias_body(src, TOOLS_UNION)
    if union is not None:
        members = [m for m in _IDENT.findall(union) if m.endswith("Input")]
        for missing in (m for m in members if m not in declared):
            problems.append(f"{TOOLS_PATH}: {TOOLS_UNION} names {missing}, which is not declared")
        chosen = [m for m in members if m in declared]
    else:
        chosen = list(declared)
    tools: dict[str, list[str]] = {}
    for decl in chosen:
        base = decl.removesuffix("Input")
        tools[TOOL_NAMES.get(base, base)] = declared[decl]
    return tools


@dataclass(frozen=True)
class ClaudeCodeExtractor:
    """version and engines.node from package.json; tools from the `*Input` types in sdk-tools.d.ts."""

    name: str = "claude-code"
    package: str = "@anthropic-ai/claude-code"
    template: str = "claude-code"

    def extract(self, files: PackageFiles, manifest: Mapping[str, Any]) -> Extracted:
        """Facts: version, engines_node, tools."""
        problems: list[str] = []
        facts: dict[str, Any] = {}
        version = _shipped(files, manifest, "version")
        if isinstance(version, str) and version:
            facts["version"] = version
        else:
            problems.append("package.json: no version")
        node = _engines_node(files, manifest)
        if node is None:
            problems.append("package.json: no engines.node range")
        else:
            facts["engines_node"] = node
        text = files.text(TOOLS_PATH)
        if text is None:
            problems.append(missing_file((TOOLS_PATH,), "the tool catalog"))
        else:
            tools = tool_catalog(strip_comments(text), problems)
            if tools:
                facts["tools"] = tools
            else:
                problems.append(f"{TOOLS_PATH}: no *Input interface or type found (types renamed?)")
        return Extracted(facts=facts, problems=tuple(problems))
