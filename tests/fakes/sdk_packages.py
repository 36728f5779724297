"""Synthetic packages shaped like the real SDKs (the files and types the extractors read), and configs."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from driftgate.proxy.templates import BUNDLED_DIR


def bundled(template: str) -> dict[str, Any]:
    """A fresh copy of a bundled template document."""
    doc: dict[str, Any] = json.loads((BUNDLED_DIR / f"{template}.json").read_text())
    return copy.deepcopy(doc)


def anthropic_sdk_files(
    models: Sequence[str] | None = None,
    betas: Sequence[str] | None = None,
    api_version: str | None = None,
) -> dict[str, str]:
    """@anthropic-ai/sdk's shape; defaults are the bundled template's facts (so: no drift)."""
    doc = bundled("anthropic")
    models = list(doc["models"]) if models is None else list(models)
    betas = list(doc["api"]["betas"]) if betas is None else list(betas)
    version = api_version or doc["api"]["version"]
    model_union = " | ".join(f"'{m}'" for m in models)
    beta_union = " | ".join(f"'{b}'" for b in betas)
    return {
        "resources/messages/messages.d.ts": (
            "import { APIResource } from '../../core/resource';\n"
            f"export type Model = {model_union} | (string & {{}});\n"
            "export interface Message { id: string; model: Model; }\n"
        ),
        "resources/beta/beta.d.ts": f"export type AnthropicBeta =\n  | (string & {{}})\n  | {beta_union};\n",
        "client.js": (
            "class BaseAnthropic {\n  defaultHeaders() {\n    return {\n"
            f"      'anthropic-version': '{version}',\n    }};\n  }}\n}}\nexports.BaseAnthropic = BaseAnthropic;\n"
        ),
    }


def anthropic_with(
    *,
    add_models: Sequence[str] = (),
    drop_models: Sequence[str] = (),
    add_betas: Sequence[str] = (),
) -> dict[str, str]:
    """The bundled anthropic facts with models/betas added or removed."""
    doc = bundled("anthropic")
    models = [m for m in doc["models"] if m not in drop_models] + list(add_models)
    return anthropic_sdk_files(models=models, betas=list(doc["api"]["betas"]) + list(add_betas))


def openai_sdk_files(models: Sequence[str] | None = None) -> dict[str, str]:
    """openai's shape: the ChatModel union in resources/shared.d.ts."""
    models = list(bundled("openai")["models"]) if models is None else list(models)
    union = " | ".join(f"'{m}'" for m in models)
    return {
        "resources/shared.d.ts": f"export type AllModels = string;\nexport type ChatModel = {union};\n"
    }


def claude_code_files(tools: Mapping[str, Sequence[str]] | None = None) -> dict[str, str]:
    """@anthropic-ai/claude-code's shape: `*Input` interfaces in sdk-tools.d.ts."""
    tools = bundled("claude-code")["tools"] if tools is None else tools
    wire_to_decl = {"Edit": "FileEdit", "Read": "FileRead", "Write": "FileWrite"}
    decls = {wire_to_decl.get(name, name) + "Input": fields for name, fields in tools.items()}
    union = "\n".join(f"  | {d}" for d in decls)
    bodies = "\n".join(
        f"export interface {d} {{\n" + "".join(f"  {f}: string;\n" for f in fields) + "}\n"
        for d, fields in decls.items()
    )
    return {"sdk-tools.d.ts": f"export type ToolInputSchemas =\n{union};\n{bodies}"}


CLAUDE_CODE_EXTRA = {"engines": {"node": ">=18.0.0"}}


def watch_config(
    home: Path,
    registry: str,
    packages: Sequence[tuple[str, str, str]],
    **extra: Any,
) -> Path:
    """Write DRIFTGATE_HOME/config.toml watching (package, template, extractor) triples."""
    lines = ["[watch]", f'registry = "{registry}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    entries = ", ".join(
        f'{{name = "{name}", template = "{template}", extractor = "{extractor}"}}'
        for name, template, extractor in packages
    )
    lines.append(f"packages = [{entries}]")
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path
