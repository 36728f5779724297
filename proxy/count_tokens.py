"""A token estimate for backends that cannot count a request themselves (about 4 characters a
token), answered in the counting endpoint's own shape."""

from __future__ import annotations

import math
from typing import Any

from driftgate.proxy.errors import InvalidRequest

CHARS_PER_TOKEN = 4
IMAGE_TOKENS = 1600  # a typical image's cost; the estimate never reads image bytes
ESTIMATE_HEADER = "x-driftgate-token-estimate"
_STRUCTURAL = frozenset({"type", "role", "cache_control", "id", "tool_use_id"})  # framing, not text


def _chars(value: Any) -> tuple[int, int]:
    """Characters of text in `value` and the number of images it holds."""
    if isinstance(value, str):
        return len(value), 0
    if isinstance(value, list):
        chars = images = 0
        for item in value:
            c, i = _chars(item)
            chars += c
            images += i
        return chars, images
    if isinstance(value, dict):
        if value.get("type") in ("image", "image_url", "document"):
            return 0, 1
        chars = images = 0
        for key, item in value.items():
            if key in _STRUCTURAL:
                continue
            c, i = _chars(item)
            chars += c
            images += i
        return chars, images
    if isinstance(value, bool) or value is None:
        return 0, 0
    return len(str(value)), 0


def estimate_tokens(body: dict[str, Any]) -> int:
    """Estimated input tokens of an Anthropic count_tokens body: system, messages and tools."""
    chars = images = 0
    for field in ("system", "messages", "tools"):
        c, i = _chars(body.get(field))
        chars += c
        images += i
    return math.ceil(chars / CHARS_PER_TOKEN) + images * IMAGE_TOKENS


def estimate(endpoint: str, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The answer of counting endpoint `endpoint` (count_tokens, input_tokens), estimated, and
    its token count."""
    if endpoint == "input_tokens":  # a Responses body: instructions, input, tools
        fields = {"system": body.get("instructions"), "messages": body.get("input"),
                  "tools": body.get("tools")}  # fmt: skip
        tokens = estimate_tokens(fields)
        return {"object": "response.input_tokens", "input_tokens": tokens}, tokens
    if not isinstance(body.get("messages"), list):
        raise InvalidRequest("`messages` is required and must be a list")
    tokens = estimate_tokens(body)
    return {"input_tokens": tokens}, tokens
