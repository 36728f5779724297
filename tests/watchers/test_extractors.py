"""Extractors on files cut from the real packages, and on the ways those files can drift."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from driftgate.watchers.extractors import Extracted, Extractor, default_watched, extractors
from driftgate.watchers.extractors.anthropic_sdk import AnthropicSdkExtractor
from driftgate.watchers.extractors.claude_code import ClaudeCodeExtractor
from driftgate.watchers.extractors.openai_sdk import OpenAiSdkExtractor
from driftgate.watchers.extractors.ts_declarations import (
    object_types,
    strip_comments,
    union_literals,
)
from driftgate.watchers.npm.tarball import PackageFiles

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "npm"


def fixture_files(package_dir: str) -> PackageFiles:
    """The fixture package (files cut from the real release) as PackageFiles."""
    root = FIXTURES / package_dir
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    return PackageFiles(MappingProxyType(files))


def _with(package_dir: str, path: str, text: str | None) -> PackageFiles:
    """The fixture package with one file replaced (or removed when `text` is None)."""
    files = dict(fixture_files(package_dir).files)
    if text is None:
        files.pop(path)
    else:
        files[path] = text.encode()
    return PackageFiles(MappingProxyType(files))


def _read(package_dir: str, path: str) -> str:
    return (FIXTURES / package_dir / path).read_text()


# --- the registry of extractors ---------------------------------------------------------------


def test_registry_lists_the_three_builtins_under_their_packages() -> None:
    found = extractors()
    assert default_watched() == ["@anthropic-ai/sdk", "openai", "@anthropic-ai/claude-code"]
    assert {p: e.template for p, e in found.items() if p in default_watched()} == {
        "@anthropic-ai/sdk": "anthropic",
        "openai": "openai",
        "@anthropic-ai/claude-code": "claude-code",
    }
    for package, ext in found.items():
        assert isinstance(ext, Extractor)
        assert ext.package == package
        # Every registered extractor is pure and total: empty input gives problems, not a crash.
        out = ext.extract(PackageFiles({}), {})
        assert isinstance(out, Extracted)
        assert out.problems and not out.facts


def test_a_third_party_extractor_needs_no_core_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real installed distribution (a .dist-info on sys.path) declaring the entry point group.
    (tmp_path / "drift_plugin_demo.py").write_text(
        "from dataclasses import dataclass\n"
        "from driftgate.watchers.extractors import Extracted\n"
        "@dataclass(frozen=True)\n"
        "class Demo:\n"
        "    name: str = 'demo'\n"
        "    package: str = '@demo/sdk'\n"
        "    template: str = 'demo'\n"
        "    def extract(self, files, manifest):\n"
        "        return Extracted(facts={'models': ['demo-1']})\n"
    )
    dist = tmp_path / "drift_plugin_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: drift-plugin-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[driftgate.extractors]\ndemo = drift_plugin_demo:Demo\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    found = extractors()
    assert found["@demo/sdk"].template == "demo"
    assert found["@demo/sdk"].extract(PackageFiles({}), {}).facts == {"models": ["demo-1"]}
    assert "@anthropic-ai/sdk" in found


# --- @anthropic-ai/sdk -----------------------------------------------------------------------


def test_anthropic_sdk_reads_models_betas_and_api_version() -> None:
    out = AnthropicSdkExtractor().extract(fixture_files("anthropic-sdk"), {})
    assert out.problems == ()
    models = out.facts["models"]
    assert models[0] == "claude-fable-5-2"
    assert "claude-sonnet-4-5-20250929" in models and len(models) == 22
    assert "string" not in models  # the `(string & {})` escape hatch is not a model
    betas = out.facts["betas"]
    assert betas[:2] == ["computer-use-2024-10-22", "computer-use-2025-01-24"]
    assert "user-profiles-billing-2026-10-01" in betas and len(betas) == 59
    assert out.facts["api_version"] == "2026-10-21"


def test_anthropic_sdk_renamed_type_is_a_problem_not_a_crash() -> None:
    text = _read("anthropic-sdk", "resources/messages/messages.d.ts").replace(
        "export type Model =", "export type ModelId ="
    )
    out = AnthropicSdkExtractor().extract(
        _with("anthropic-sdk", "resources/messages/messages.d.ts", text), {}
    )
    assert "models" not in out.facts
    assert out.facts["betas"] and out.facts["api_version"]  # the rest still extracted
    assert out.problems == (
        "resources/messages/messages.d.ts: type Model not found (file moved or type renamed?)",
    )


def test_anthropic_sdk_moved_file_is_a_problem() -> None:
    out = AnthropicSdkExtractor().extract(
        _with("anthropic-sdk", "resources/beta/beta.d.ts", None), {}
    )
    assert "betas" not in out.facts
    assert any("resources/beta/beta.d.ts" in p and "beta names" in p for p in out.problems)


def test_anthropic_sdk_older_layout_is_still_found() -> None:
    files = dict(fixture_files("anthropic-sdk").files)
    files["resources/messages.d.ts"] = files.pop("resources/messages/messages.d.ts")
    files["index.js"] = files.pop("client.js")
    out = AnthropicSdkExtractor().extract(PackageFiles(files), {})
    assert out.problems == ()
    assert out.facts["api_version"] == "2026-10-21" and len(out.facts["models"]) == 22


def test_anthropic_sdk_missing_version_header_and_empty_union() -> None:
    files = dict(fixture_files("anthropic-sdk").files)
    files["client.js"] = b"const headers = { Accept: 'application/json' };"
    files["resources/beta/beta.d.ts"] = b"export type AnthropicBeta = string;"
    out = AnthropicSdkExtractor().extract(PackageFiles(files), {})
    assert set(out.facts) == {"models"}
    assert any("anthropic-version" in p for p in out.problems)
    assert any("AnthropicBeta has no string literals" in p for p in out.problems)


# --- openai ----------------------------------------------------------------------------------


def test_openai_reads_chat_models_not_all_models() -> None:
    out = OpenAiSdkExtractor().extract(fixture_files("openai"), {})
    assert out.problems == ()
    models = out.facts["models"]
    assert models[:3] == ["gpt-5.6-sol", "gpt-5.6-terra", "gpt-5.6-luna"]
    assert "gpt-4.1" in models
    assert "o1-pro" not in models  # that one is only in AllModels


def test_openai_renamed_type_is_a_problem() -> None:
    text = _read("openai", "resources/shared.d.ts").replace(
        "type ChatModel =", "type ChatModelId ="
    )
    out = OpenAiSdkExtractor().extract(_with("openai", "resources/shared.d.ts", text), {})
    assert out.facts == {}
    assert out.problems == (
        "resources/shared.d.ts: type ChatModel not found (file moved or type renamed?)",
    )


# --- @anthropic-ai/claude-code ---------------------------------------------------------------


def _claude_manifest() -> Mapping[str, Any]:
    return json.loads(_read("claude-code", "package.json"))  # type: ignore[no-any-return]


def test_claude_code_reads_engines_and_tool_catalog() -> None:
    manifest = _claude_manifest()
    out = ClaudeCodeExtractor().extract(fixture_files("claude-code"), manifest)
    assert out.problems == ()
    assert out.facts["version"] == manifest["version"]
    assert out.facts["engines_node"] == ">=18.0.0"
    tools = out.facts["tools"]
    assert list(tools) == [
        "Bash", "ExitPlanMode", "Edit", "Read", "Write", "Glob", "Grep", "Mcp", "EnterPlanMode",
    ]  # fmt: skip
    assert tools["Bash"] == [
        "command", "timeout", "description", "run_in_background", "dangerouslyDisableSandbox",
    ]  # fmt: skip
    assert tools["Edit"] == ["file_path", "old_string", "new_string", "replace_all"]
    # Nested object fields (allowedPrompts[].tool, .prompt) are not the tool's own fields.
    assert tools["ExitPlanMode"] == ["allowedPrompts"]
    assert "-B" in tools["Grep"] and "multiline" in tools["Grep"]
    assert tools["Mcp"] == [] and tools["EnterPlanMode"] == []


def test_claude_code_engines_fall_back_to_the_shipped_package_json() -> None:
    out = ClaudeCodeExtractor().extract(fixture_files("claude-code"), {})
    assert out.facts["engines_node"] == ">=18.0.0"
    assert out.facts["version"] == _claude_manifest()["version"]


def test_claude_code_without_a_version_says_so() -> None:
    files = PackageFiles({"sdk-tools.d.ts": b"export interface BashInput { command: string }"})
    out = ClaudeCodeExtractor().extract(files, {"engines": {"node": ">=20"}})
    assert "version" not in out.facts and out.problems == ("package.json: no version",)
    assert out.facts["tools"] == {"Bash": ["command"]}


def test_claude_code_type_alias_inputs_and_braces_in_comments_and_strings() -> None:
    src = """
export type ToolInputSchemas = | AlphaInput | BetaInput | GammaInput | GoneInput;
/** Not a tool: {} braces in a comment { and } unbalanced { */
export type AlphaInput = {
  /** run `rm {} \\;` - braces in a doc comment */
  path: string;
  options?: { nested: { deep: boolean }; "quoted-key": string };
  mode?: "a{" | 'b}';
};
export type BetaInput =
  | { kind: "one"; first: string }
  | { kind: "two"; second: number };
export interface GammaInput extends Base<{ x: 1 }> {
  readonly 'weird-name'?: string;
  [k: string]: unknown;
  run(cb: (a: string) => void): void;
  last: Array<{ a: string, b: number }>
}
export interface HelperInput { notATool: string; }
"""
    files = PackageFiles({"sdk-tools.d.ts": src.encode(), "package.json": b'{"engines":{}}'})
    out = ClaudeCodeExtractor().extract(files, {})
    assert out.facts["tools"] == {
        "Alpha": ["path", "options", "mode"],
        "Beta": ["kind", "first", "second"],
        "Gamma": ["weird-name", "last"],
    }
    problems = list(out.problems)
    assert any("GoneInput" in p for p in problems)
    assert any("engines.node" in p for p in problems)


def test_claude_code_without_the_union_takes_every_input_declaration() -> None:
    src = "export interface FileReadInput { file_path: string; }\nexport interface WebFetchInput { url: string }\n"
    out = ClaudeCodeExtractor().extract(
        PackageFiles({"sdk-tools.d.ts": src.encode()}),
        {"version": "2.1.0", "engines": {"node": ">=20"}},
    )
    assert out.facts["tools"] == {"Read": ["file_path"], "WebFetch": ["url"]}
    assert out.problems == ()


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        ({}, "sdk-tools.d.ts: not in the package"),
        ({"sdk-tools.d.ts": b"export interface BashArgs { command: string }"}, "no *Input"),
    ],
)
def test_claude_code_missing_catalog_is_a_problem(files: dict[str, bytes], needle: str) -> None:
    out = ClaudeCodeExtractor().extract(PackageFiles(files), {"engines": {"node": ">=18"}})
    assert "tools" not in out.facts
    assert any(needle in p for p in out.problems)


# --- the .d.ts reader itself -----------------------------------------------------------------


def test_union_literals_handles_escapes_generics_and_ignores_nested_literals() -> None:
    src = strip_comments(
        "// type Fake = 'no';\n"
        "export declare type T<X = 1> =\n"
        "  | 'it\\'s'\n"
        "  | \"dq\" // trailing comment 'no'\n"
        "  | { tag: 'nested' }\n"
        "  | Other<'generic'>\n"
        "  | 'dq';\n"
        "export type After = 'later';\n"
    )
    assert union_literals(src, "T") == ["it's", "dq"]
    assert union_literals(src, "Fake") is None
    assert union_literals(src, "After") == ["later"]


def test_object_types_skips_names_with_other_suffixes() -> None:
    src = strip_comments("interface AInput { a: 1 }\ninterface AOutput { b: 2 }\n")
    assert object_types(src, "Input") == {"AInput": ["a"]}
