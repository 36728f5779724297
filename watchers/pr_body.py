"""A pull request body's hidden fingerprint marker and its truncation below GitHub's size limit."""

from __future__ import annotations

import re

# GitHub refuses bodies over 65,536 characters; like Renovate, stop well before it.
BODY_LIMIT = 58_000
MARKER_RE = re.compile(r"<!-- driftgate:fingerprint=(sha256:[0-9a-f]{64}) -->")
FENCE_RE = re.compile(r"^(`{3,})[^\n]*\n(.*?)^\1[ \t]*$", re.MULTILINE | re.DOTALL)


def fingerprint_marker(fingerprint: str) -> str:
    """The hidden comment that identifies the candidate a PR carries."""
    return f"<!-- driftgate:fingerprint={fingerprint} -->"


def fingerprint_of(body: str) -> str | None:
    """The fingerprint recorded in a PR body, if any."""
    m = MARKER_RE.search(body)
    return m.group(1) if m else None


def _shrink_block(body: str, start: int, end: int, excess: int) -> str:
    """Drop lines from the end of the code block content between start and end."""
    lines = body[start:end].splitlines(keepends=True)
    dropped = 0
    removed = 0
    while lines and removed < excess + 120:
        removed += len(lines.pop())
        dropped += 1
    note = f"... truncated: {dropped} more lines not shown\n"
    return body[:start] + "".join(lines) + note + body[end:]


def truncate_body(body: str, limit: int = BODY_LIMIT) -> str:
    """`body` cut below `limit`: the largest code block shrinks first, so headings and tables stay."""
    body = MARKER_RE.sub("", body).rstrip()
    if len(body) <= limit:
        return body
    while len(body) > limit:
        blocks = [m for m in FENCE_RE.finditer(body) if len(m.group(2)) > 200]
        if not blocks:
            break
        block = max(blocks, key=lambda m: len(m.group(2)))
        body = _shrink_block(body, block.start(2), block.end(2), len(body) - limit)
    if len(body) > limit:
        note = "\n\n_Body truncated to fit GitHub's limit._"
        body = body[: limit - len(note)] + note
    return body
