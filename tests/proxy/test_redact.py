"""Credentials never reach a log line: known secrets, key-shaped strings, tracebacks."""

from __future__ import annotations

import io
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftgate.proxy.redact import RedactingFilter, Redactor

SECRET = "gw-secret-value-123456"


def test_known_secrets_and_key_shaped_values_are_masked() -> None:
    r = Redactor([SECRET, None, "abc"])  # too-short and missing secrets are ignored
    out = r.text(
        f"key={SECRET} x-api-key: sk-ant-api03-AAAAAAAAAAAA authorization: Bearer tok-123456789 "
        "sk-proj-BBBBBBBBBBBBBBBB abc"
    )
    assert SECRET not in out
    assert "sk-ant-api03-AAAAAAAAAAAA" not in out and "sk-proj-BBBBBBBBBBBBBBBB" not in out
    assert "tok-123456789" not in out
    assert out.endswith("abc")  # ordinary text is left alone


def test_the_log_filter_masks_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(Redactor([SECRET])))
    logger = logging.getLogger("driftgate.test-redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("upstream said %s", f"bad key {SECRET}")
        try:
            raise RuntimeError(f"boom with {SECRET} and sk-live-CCCCCCCCCCCC")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "upstream said bad key" in text and "RuntimeError: boom with" in text
    assert SECRET not in text and "sk-live-CCCCCCCCCCCC" not in text


@pytest.mark.parametrize(
    "text",
    [
        "AUTHORIZATION: Bearer tok-123456789",
        "X-Api-Key: tok-123456789",
        "ApiKey=tok-123456789",
        "SK-PROJ-BBBBBBBBBBBBBBBB",
    ],
)
def test_the_quick_pre_check_never_skips_a_credential_in_any_case(text: str) -> None:
    assert "123456789" not in Redactor([]).text(text).replace("BBBBBBBB", "")
    assert "BBBBBBBBBBBBBBBB" not in Redactor([]).text(text)


def test_text_without_any_credential_marker_is_returned_unchanged() -> None:
    line = "messages claude-sonnet-4-6 -> fake-anthropic (claude-sonnet-4-6) 200 12 ms"
    assert Redactor(["not-in-the-line"]).text(line) == line


_PIECES = st.sampled_from(
    ["sk-", "SK-", "api", "Api_Key", "authorization", "x-api-key: ", "=", ":", " ", "\n", "bearer ",
     SECRET, SECRET[:9], "gpt-4o-mini", "AAAAAAAAAAAA", "(m)", "200", "12 ms", "é"]
)  # fmt: skip


@given(st.lists(st.lists(_PIECES, max_size=8).map("".join), max_size=6))
def test_what_the_batch_check_leaves_alone_redaction_leaves_alone_line_by_line(
    lines: list[str],
) -> None:
    """`leaves` on a batch's lines joined is exact: True only when no line would change."""
    redactor = Redactor([SECRET])
    joined = "\n".join(lines)
    if redactor.leaves(joined):
        assert all(redactor.text(line) == line for line in lines)
    for line in lines:
        if redactor.text(line) != line:
            assert not redactor.leaves(line) and not redactor.leaves(joined)
