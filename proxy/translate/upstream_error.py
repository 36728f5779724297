"""An upstream error body, mapped once into the client's dialect with its message kept."""

from __future__ import annotations

import re
from typing import Any

from driftgate.proxy.errors import Dialect, type_for_status
from driftgate.proxy.translate.adapters import adapter
from driftgate.proxy.translate.input_checks import decode_json

MAX_MESSAGE = 2000
# Key-shaped strings an upstream might echo back; shown as their first few characters only.
_SECRET = re.compile(r"\b(sk-(?:ant-)?|Bearer\s+)([A-Za-z0-9_\-*.]{4})[A-Za-z0-9_\-*.]{6,}")


def upstream_message(status: int, raw: bytes) -> str:
    """The human message inside an upstream error body, whatever its shape (or none)."""
    body = decode_json(raw) if raw else None
    message: Any = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            message = err.get("message")
        elif isinstance(err, str):
            message = err
        message = message or body.get("message") or body.get("detail")
    elif raw:
        message = raw.decode("utf-8", errors="replace").strip()
    if not isinstance(message, str) or not message.strip():
        return f"upstream returned HTTP {status}"
    return redact(message.strip()[:MAX_MESSAGE])


def redact(text: str) -> str:
    """`text` with anything shaped like an API key cut to its prefix."""
    return _SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}…", text)


def translate_error(status: int, raw: bytes, source: Dialect, target: Dialect) -> dict[str, Any]:
    """An upstream error (any body, even garbage) as error JSON in the target dialect."""
    if source == target:
        body = decode_json(raw) if raw else None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return body
    return adapter(target).error_body(
        upstream_message(status, raw), type_for_status(status, target)
    )
