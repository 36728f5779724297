"""The doc checkers reject broken samples: each test here shows one check able to fail."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from driftgate.proxy.errors import ConfigError

from .commands import driftgate_commands, parse_problem, runnable
from .config_examples import check_config_example
from .markdown import Block, blocks
from .opening import link_problems, opening_problems, unlinked_pages

# The Configuration example the README carried before: its fallback names a backend it never defines.
OLD_README_EXAMPLE = """\
[gateway]
default_backend = "local"

[backends.anthropic]
kind = "anthropic"
key_env = "ANTHROPIC_API_KEY"

[backends.local]
kind = "openai"
base_url = "http://127.0.0.1:11434/v1"
models = ["qwen*", "llama3.1"]

[fallbacks]
opus = ["openai:gpt-5.4", "local:qwen-coder"]
"""


def _page(tmp_path: Path, text: str, name: str = "page.md") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _shell(tmp_path: Path, text: str, lang: str = "sh") -> Block:
    return blocks(_page(tmp_path, f"```{lang}\n{text}```\n"))[0]


def test_an_example_whose_fallback_names_an_unconfigured_backend_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="names backend 'openai', which is not configured"):
        check_config_example(OLD_README_EXAMPLE, None, tmp_path)


def test_an_unknown_key_is_refused_in_a_whole_example_and_in_a_fragment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="prot"):
        check_config_example("[gateway]\nprot = 4000\n", None, tmp_path / "a")
    with pytest.raises(ConfigError, match="gatway"):
        check_config_example("[gatway]\nport = 4000\n", None, tmp_path / "g")
    with pytest.raises(ConfigError, match="kindd"):
        check_config_example('[backends.x]\nkindd = "openai"\n', "fragment", tmp_path / "b")


def test_a_fragment_still_has_to_be_toml_and_to_load(tmp_path: Path) -> None:
    with pytest.raises(tomllib.TOMLDecodeError):
        check_config_example("[fallbacks\nopus = 1\n", "fragment", tmp_path / "a")
    with pytest.raises(ConfigError):
        check_config_example('[backends.x]\nkind = "cohere"\n', "fragment", tmp_path / "b")
    # What a fragment leaves out (the backends its fallbacks name) is stood in for.
    check_config_example('[fallbacks]\nopus = ["openai:gpt-5.4"]\n', "fragment", tmp_path / "c")


def test_the_fragment_marker_is_read_from_the_line_before_the_fence(tmp_path: Path) -> None:
    page = _page(tmp_path, "text\n\n<!-- fragment -->\n```toml\n[fallbacks]\n```\n\n```toml\n```\n")
    assert [b.marker for b in blocks(page)] == ["fragment", None]


def test_commands_with_unknown_flags_or_subcommands_are_refused(tmp_path: Path) -> None:
    block = _shell(
        tmp_path,
        ".venv/bin/driftgate backend add x --kindd openai\n"
        ".venv/bin/driftgate proxi\n"
        ".venv/bin/driftgate proxy --port eighty\n"
        ".venv/bin/driftgate --config x.toml\n",
    )
    problems = [parse_problem(c) for c in driftgate_commands(block)]
    assert len(problems) == 4 and all(problems), problems
    assert "--kindd" in str(problems[0]) and "proxi" in str(problems[1])
    assert "names no subcommand" in str(problems[3])


def test_a_command_not_spelled_as_the_install_puts_it_is_refused(tmp_path: Path) -> None:
    block = _shell(tmp_path, "GITHUB_TOKEN=x driftgate watch npm --once\n")
    (cmd,) = driftgate_commands(block)
    assert cmd.env == (("GITHUB_TOKEN", "x"),)
    assert ".venv/bin/driftgate" in str(parse_problem(cmd))


def test_commands_are_found_behind_env_prefixes_pipes_and_prompts(tmp_path: Path) -> None:
    sh = _shell(
        tmp_path,
        "env -u A -u B .venv/bin/driftgate proxy   # comment\n"
        ".venv/bin/driftgate usage --json | head && echo driftgate\n"
        ".venv/bin/driftgate backend add g --kind openai \\\n    --models 'llama-*'\n",
    )
    assert [c.argv for c in driftgate_commands(sh)] == [
        ("proxy",),
        ("usage", "--json"),
        ("backend", "add", "g", "--kind", "openai", "--models", "llama-*"),
    ]
    console = _shell(tmp_path, "$ .venv/bin/driftgate usage\nBACKEND MODEL\n", "console")
    assert [c.argv for c in driftgate_commands(console)] == [("usage",)]


def test_placeholders_and_servers_are_parsed_but_not_run(tmp_path: Path) -> None:
    block = _shell(
        tmp_path,
        ".venv/bin/driftgate template diff OLD.json NEW.json\n"
        ".venv/bin/driftgate proxy\n"
        ".venv/bin/driftgate backend list\n",
    )
    assert [runnable(c) for c in driftgate_commands(block)] == [False, False, True]


def test_a_readme_that_does_not_open_with_the_two_commands_is_refused(tmp_path: Path) -> None:
    readme = _page(tmp_path, "# x\n\n```sh\n./tests/run\n```\n\n```sh\npip install x\n```\n")
    problems = opening_problems(readme)
    assert len(problems) == 2
    fine = "```sh\npip install -e . && .venv/bin/driftgate proxy\n```\n```sh\n./tests/run\n```\n"
    assert opening_problems(_page(tmp_path, fine, "ok.md")) == []


def test_broken_links_and_unlinked_pages_are_reported(tmp_path: Path) -> None:
    _page(tmp_path, "# Routing\n\n## Fallback lists\n", "routing.md")
    page = _page(
        tmp_path,
        "[a](routing.md#fallback-lists) [b](routing.md#nope) [c](gone.md) `[d](gone.md)`\n"
        "[e](https://example.com/x)\n",
    )
    assert len(link_problems(page)) == 2
    extra = _page(tmp_path, "# Extra\n", "extra.md")
    index = _page(tmp_path, "- [Routing](routing.md)\n", "index.md")
    assert unlinked_pages(index, [tmp_path / "routing.md", extra]) == [extra]
