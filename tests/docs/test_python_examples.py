"""Python examples in README.md and docs/*.md: all compile; those that talk to the gateway run against it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI

from .markdown import Block, blocks, doc_pages

GATEWAY_URL = "http://127.0.0.1:3456"  # the address the examples use
PYTHON_BLOCKS = [b for page in doc_pages() for b in blocks(page) if b.lang == "python"]
TALKING = [b for b in PYTHON_BLOCKS if GATEWAY_URL in b.text]


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.where)
def test_python_example_compiles(block: Block) -> None:
    compile(block.text, block.where, "exec")


def test_the_readme_has_an_sdk_example_to_run() -> None:
    assert any(b.path.name == "README.md" for b in TALKING)


@pytest.mark.parametrize("block", TALKING, ids=lambda b: b.where)
def test_sdk_example_runs_through_the_gateway(
    block: Block, gateway: Any, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> None:
    # The gateway fixture routes claude-* and the aliases to one fake upstream, gpt-* to the other.
    code = compile(block.text.replace(GATEWAY_URL, gateway.url), block.where, "exec")
    exec(code, {"__name__": "docs_example"})
    # Each dialect's SDK in the example crossed over to the other dialect's upstream.
    if "anthropic.Anthropic(" in block.text:
        assert fake_openai.requests, "the Anthropic SDK's request never reached the OpenAI upstream"
    if "openai.OpenAI(" in block.text:
        assert fake_anthropic.requests, (
            "the OpenAI SDK's request never reached the Anthropic upstream"
        )
