"""Shapes hold key paths, types and allowlisted tokens: never content, never credentials."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from driftgate.proxy.observe.shape_extract import OTHER, REDACTED, safe_token, shape_of

SECRETS = (
    "sk-ant-api03-Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz",
    "sk-proj-abcdefghijklmnopqrstuvwx1234",
    "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "Bearer eyJhbGciOiJIUzI1NiJ9payload",
    "AKIAIOSFODNN7EXAMPLEKEY",
)
CONTENT = "the secret plan is to meet at noon"

# Values: content, secrets, or harmless scalars; keys: field names, or secrets planted as keys.
_leaf = st.one_of(
    st.sampled_from((CONTENT, *SECRETS)),
    st.text(min_size=0, max_size=20).map(lambda t: f"{CONTENT} {t}"),
    st.integers(),
    st.booleans(),
    st.none(),
)
_key = st.one_of(
    st.sampled_from(("role", "content", "type", "text", "model", "name", "tools", "input",
                     "metadata", "system", "thinking", "tool_choice", "function", "messages")),
    st.sampled_from(SECRETS),
    st.text(max_size=12),
)  # fmt: skip
_json: st.SearchStrategy[Any] = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_key, inner, max_size=5),
    max_leaves=40,
)


def _dump(shape: dict[str, Any]) -> str:
    return orjson.dumps(shape).decode()


@settings(max_examples=300, deadline=None)
@given(body=st.dictionaries(_key, _json, max_size=6), ua=st.sampled_from((None, *SECRETS)))
def test_no_planted_secret_or_content_reaches_the_shape(
    body: dict[str, Any], ua: str | None
) -> None:
    headers = [("x-api-key", SECRETS[0]), ("authorization", SECRETS[3]),
               ("anthropic-beta", f"{SECRETS[1]},tools-2024-04-04"), ("anthropic-version", CONTENT)]  # fmt: skip
    text = _dump(shape_of("messages", headers, ua, body))
    assert CONTENT not in text
    assert "secret plan" not in text
    for secret in SECRETS:
        assert secret not in text
        assert secret[8:20] not in text  # not even a slice of it


def test_a_claude_code_request_keeps_its_enum_like_values() -> None:
    body = {
        "model": "claude-sonnet-4-5-20250929",
        "system": [{"type": "text", "text": CONTENT, "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": CONTENT}]},
            {"role": "system", "content": CONTENT},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "Read",
                        "input": {"path": CONTENT},
                    }
                ],
            },
        ],
        "tools": [
            {"name": "ToolSearch", "input_schema": {"type": "object", "properties": {"q": {}}}}
        ],
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "metadata": {"user_id": CONTENT},
    }
    headers = [("User-Agent", "claude-cli/2.1.332 (external, cli)"), ("anthropic-beta",
               "interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"),
               ("anthropic-version", "2023-06-01"), ("x-api-key", SECRETS[0])]  # fmt: skip
    shape = shape_of("messages", headers, "claude-cli/2.1.332 (external, cli)", body)
    assert shape["client"] == {"family": "claude-cli", "version": "2.1.332"}
    assert "x-api-key" in shape["headers"] and SECRETS[0] not in _dump(shape)
    assert shape["header_values"]["anthropic-beta"] == [
        "fine-grained-tool-streaming-2025-05-14",
        "interleaved-thinking-2025-05-14",
    ]
    values = shape["values"]
    assert values["roles"] == ["assistant", "system", "user"]
    assert values["block_types"] == ["text", "tool_use"]
    assert values["tool_names"] == ["ToolSearch"]
    assert values["tool_choice.type"] == ["auto"] and values["thinking.type"] == ["enabled"]
    fields = shape["fields"]
    assert fields["messages[].content"] == ["array", "string"]
    assert fields["tools[].input_schema"] == ["object"]
    assert "tools[].input_schema.properties" not in fields  # the client's own schema: not walked
    assert fields["metadata"] == ["object"] and "metadata.user_id" not in fields
    assert CONTENT not in _dump(shape)


def test_safe_token() -> None:
    assert safe_token("gpt-4o-mini") == "gpt-4o-mini"
    assert safe_token("hello world") == OTHER
    assert safe_token(3) == OTHER
    assert safe_token(SECRETS[0]) == REDACTED
    assert safe_token("x" * 200) == REDACTED
