"""A request's privacy-safe shape: which client, which endpoint, which header names and body key
paths with their JSON types, and values only for an allowlist of enum-like fields.

Never message content, never credentials: a value outside the allowlist is never read, and an
allowlisted value (or a header or key name) that is not a short token, or looks like a key, is
replaced by a placeholder. docs/shapes.md lists exactly what a shape holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from driftgate.proxy.observe.client_agent import client_of

# Header values kept; every other header is its name only.
VALUE_HEADERS = ("anthropic-version", "anthropic-beta")
# Names never recorded even as names: they say nothing about the API and vary per deployment.
_SKIP_HEADERS = frozenset({"cookie", "host", "content-length", "connection"})
# Objects whose keys are the client's own data (JSON schemas, tool inputs, metadata): recorded
# as "object", never walked.
FREE_FORM = frozenset(
    {"input_schema", "parameters", "input", "metadata", "schema", "arguments", "json_schema",
     "properties", "extra_body", "logit_bias", "prediction"}
)  # fmt: skip
MAX_PATHS = 400
MAX_DEPTH = 8
MAX_VALUES = 64
OTHER = "<other>"
REDACTED = "<redacted>"

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@\-]{0,79}")
_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_\-$]{0,63}")
# Credential-looking: a known key prefix, or a long unbroken run of letters and digits.
_CREDENTIAL = re.compile(
    r"(?i)^(?:sk|pk|rk|ak)[-_]|^(?:ghp|gho|ghs|github_pat|xox[abp]|akia|bearer|eyj)|[A-Za-z0-9]{24,}"
)
_JSON_TYPES = {str: "string", bool: "boolean", int: "number", float: "number", list: "array",
               dict: "object", type(None): "null"}  # fmt: skip


# Names and tokens repeat from request to request: each is judged once (a bounded memo).
_MEMO_LIMIT = 4096
_tokens: dict[str, str] = {}
_keys: dict[str, str] = {}


def safe_token(value: object) -> str:
    """`value` if it is a short token that is not credential-shaped, else a placeholder."""
    if not isinstance(value, str):
        return OTHER
    found = _tokens.get(value)
    if found is None:
        found = (
            REDACTED if _CREDENTIAL.search(value) else value if _TOKEN.fullmatch(value) else OTHER
        )
        if len(_tokens) < _MEMO_LIMIT:
            _tokens[value] = found
    return found


def _safe_key(key: str) -> str:
    found = _keys.get(key)
    if found is None:
        found = REDACTED if _CREDENTIAL.search(key) else key if _KEY.fullmatch(key) else OTHER
        if len(_keys) < _MEMO_LIMIT:
            _keys[key] = found
    return found


def header_shape(headers: Iterable[tuple[str, str]]) -> tuple[list[str], dict[str, list[str]]]:
    """Sorted header names, and the allowlisted headers' values (comma lists split)."""
    names: set[str] = set()
    values: dict[str, set[str]] = {}
    for raw_name, value in headers:
        name = raw_name.lower()
        if name in _SKIP_HEADERS:
            continue
        names.add(_safe_key(name))
        if name in VALUE_HEADERS:
            bucket = values.setdefault(name, set())
            for part in value.split(","):
                if part.strip():
                    bucket.add(safe_token(part.strip()))
    return sorted(names), {k: sorted(v)[:MAX_VALUES] for k, v in sorted(values.items())}


def body_paths(body: Mapping[str, Any]) -> dict[str, list[str]]:
    """Every key path (arrays as `[]`) with the JSON types seen there."""
    out: dict[str, set[str]] = {}
    stack: list[tuple[str, Any, int]] = [("", body, 0)]
    while stack:
        prefix, value, depth = stack.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                path = f"{prefix}.{_safe_key(str(key))}" if prefix else _safe_key(str(key))
                kind = _JSON_TYPES.get(type(child), "other")
                if path not in out and len(out) >= MAX_PATHS:
                    continue
                out.setdefault(path, set()).add(kind)
                if key not in FREE_FORM and depth < MAX_DEPTH and kind in ("object", "array"):
                    stack.append((path, child, depth + 1))
        elif isinstance(value, list):
            path = f"{prefix}[]"
            for item in value:
                kind = _JSON_TYPES.get(type(item), "other")
                if path not in out and len(out) >= MAX_PATHS:
                    break
                out.setdefault(path, set()).add(kind)
                if depth < MAX_DEPTH and kind in ("object", "array"):
                    stack.append((path, item, depth + 1))
    return {k: sorted(v) for k, v in sorted(out.items())}


def body_values(body: Mapping[str, Any]) -> dict[str, list[str]]:
    """The allowlisted enum-like values: model, roles, block and item types, tool names and
    types, tool_choice.type, thinking.type."""
    found: dict[str, set[str]] = {
        "model": set(), "roles": set(), "block_types": set(), "tool_names": set(),
        "tool_types": set(), "tool_choice.type": set(), "thinking.type": set(),
    }  # fmt: skip
    if "model" in body:
        found["model"].add(safe_token(body["model"]))
    for key in ("messages", "input"):
        items = body.get(key)
        if not isinstance(items, list):
            continue
        for item in items:
            if not isinstance(item, dict):
                continue
            if "role" in item:
                found["roles"].add(safe_token(item["role"]))
            if key == "input" and "type" in item:
                found["block_types"].add(safe_token(item["type"]))
            content = item.get("content")
            if isinstance(content, list):
                for block in content:
                    if isinstance(block, dict) and "type" in block:
                        found["block_types"].add(safe_token(block["type"]))
    system = body.get("system")
    if isinstance(system, list):
        for block in system:
            if isinstance(block, dict) and "type" in block:
                found["block_types"].add(safe_token(block["type"]))
    tools = body.get("tools")
    if isinstance(tools, list):
        for tool in tools:
            if not isinstance(tool, dict):
                continue
            fn = tool.get("function")
            name = fn.get("name") if isinstance(fn, dict) else tool.get("name")
            if name is not None:
                found["tool_names"].add(safe_token(name))
            if "type" in tool:
                found["tool_types"].add(safe_token(tool["type"]))
    for key in ("tool_choice", "thinking"):
        value = body.get(key)
        if isinstance(value, dict) and "type" in value:
            found[f"{key}.type"].add(safe_token(value["type"]))
        elif isinstance(value, str):
            found[f"{key}.type"].add(safe_token(value))
    return {k: sorted(v)[:MAX_VALUES] for k, v in found.items() if v}


def shape_of(
    endpoint: str, headers: Iterable[tuple[str, str]], user_agent: str | None, body: Any
) -> dict[str, Any]:
    """The whole shape of one request, as stored (a JSON object)."""
    family, version = client_of(user_agent)
    names, header_values = header_shape(headers)
    shape: dict[str, Any] = {
        "client": {"family": safe_token(family), "version": version and safe_token(version)},
        "endpoint": endpoint,
        "headers": names,
        "header_values": header_values,
    }
    if isinstance(body, dict):
        shape["fields"] = body_paths(body)
        shape["values"] = body_values(body)
    else:
        shape["fields"], shape["values"] = {}, {}
    return shape
