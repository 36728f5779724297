"""Every TOML example and every `driftgate` command in README.md and docs/*.md works as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from .commands import SHELL_LANGS, driftgate_commands, parse_problem, run, runnable
from .config_examples import check_config_example
from .markdown import Block, blocks, doc_pages

PAGES = doc_pages()
TOML_BLOCKS = [b for page in PAGES for b in blocks(page) if b.lang == "toml"]
SHELL_BLOCKS = [b for page in PAGES for b in blocks(page) if b.lang in SHELL_LANGS]


def test_the_docs_hold_examples_to_check() -> None:
    assert len(TOML_BLOCKS) >= 5
    assert sum(len(driftgate_commands(b)) for b in SHELL_BLOCKS) >= 20


@pytest.mark.parametrize("block", TOML_BLOCKS, ids=lambda b: b.where)
def test_toml_example_loads_as_driftgate_would(block: Block, tmp_path: Path) -> None:
    check_config_example(block.text, block.marker, tmp_path)


@pytest.mark.parametrize(
    "block", [b for b in SHELL_BLOCKS if driftgate_commands(b)], ids=lambda b: b.where
)
def test_driftgate_commands_parse_and_the_offline_ones_run(block: Block, tmp_path: Path) -> None:
    commands = driftgate_commands(block)
    problems = [p for p in map(parse_problem, commands) if p]
    assert not problems, "\n".join(problems)
    # Run in order, as a reader would, each block in its own scratch home.
    for cmd in filter(runnable, commands):
        done = run(cmd, tmp_path)
        assert done.returncode == 0, f"{cmd.where}: exit {done.returncode}\n{done.stderr}"
