"""Shape checks on untrusted request bodies, each failing with an InvalidRequest that names the field."""

from __future__ import annotations

import re
from typing import Any

import orjson

from driftgate.proxy.errors import InvalidRequest


def as_list(value: Any, where: str) -> list[Any]:
    """`value` if it is a JSON array, else InvalidRequest."""
    if not isinstance(value, list):
        raise InvalidRequest(f"{where} must be an array, got {type_name(value)}")
    return value


def as_dict(value: Any, where: str) -> dict[str, Any]:
    """`value` if it is a JSON object, else InvalidRequest."""
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where} must be an object, got {type_name(value)}")
    return value


def as_str(value: Any, where: str) -> str:
    """`value` if it is a string, else InvalidRequest."""
    if not isinstance(value, str):
        raise InvalidRequest(f"{where} must be a string, got {type_name(value)}")
    return value


def opt_number(value: Any, where: str) -> float | None:
    """None, or `value` if it is a number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"{where} must be a number, got {type_name(value)}")
    return value


def opt_int(value: Any, where: str) -> int | None:
    """None, or `value` if it is an integer."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{where} must be an integer, got {type_name(value)}")
    return value


def type_name(value: Any) -> str:
    """The JSON name of `value`'s type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object" if isinstance(value, dict) else "value"


def dumps(value: Any) -> str:
    """Compact JSON text."""
    return orjson.dumps(value).decode()


def arguments_object(arguments: str, where: str, *, strict: bool) -> dict[str, Any]:
    """A tool call's JSON arguments as an object.

    Requests (strict) reject arguments that are not a JSON object; responses keep what the model
    wrote under "_unparsed_arguments" rather than lose it.
    """
    try:
        value = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        return value
    if strict:
        raise InvalidRequest(f"{where}: tool call arguments must be a JSON object")
    return {"_unparsed_arguments": arguments}


_HEADER_UNSAFE = re.compile(r"[^\x21-\x2b\x2d-\x7e]")  # printable ASCII but the comma
MAX_NAMES = 64  # an x-driftgate-dropped value stays far below any client's header limit
MAX_NAME = 80


def header_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """`names` fit for the x-driftgate-dropped header: the client chose some of these strings."""
    out = [
        (_HEADER_UNSAFE.sub("?", n) if _HEADER_UNSAFE.search(n) else n)[:MAX_NAME] for n in names
    ]
    if len(out) > MAX_NAMES:
        out[MAX_NAMES - 1 :] = [f"+{len(out) - MAX_NAMES + 1}-more"]
    return tuple(out)


def unique(names: list[str]) -> tuple[str, ...]:
    """`names` without repeats, first occurrence kept."""
    return tuple(dict.fromkeys(names)) if names else ()


def decode_json(raw: bytes | str) -> Any:
    """JSON from text, or None when it is not JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def obj_at(container: dict[str, Any], key: str) -> dict[str, Any]:
    """`container[key]` when it is an object, else an empty one (lenient reading of upstream output)."""
    value = container.get(key)
    return value if isinstance(value, dict) else {}


def list_at(container: dict[str, Any], key: str) -> list[Any]:
    """`container[key]` when it is an array, else an empty one (lenient reading of upstream output)."""
    value = container.get(key)
    return value if isinstance(value, list) else []
