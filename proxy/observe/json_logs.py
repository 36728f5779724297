"""`[gateway] log_format = "json"`: one JSON object per line, for log shippers.

Credentials are masked before this runs (the RedactingFilter on each handler rewrites the
message and traceback). A batch of request lines (one log call per batch, see keeper.py)
becomes one object per request.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object per line: ts, level, logger, message (or request)."""

    def format(self, record: logging.LogRecord) -> str:
        """The line(s) for `record`."""
        base: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        requests = getattr(record, "requests", None)
        if isinstance(requests, list) and requests:
            return "\n".join(
                orjson.dumps({**base, "event": "request", **fields}).decode() for fields in requests
            )
        base["message"] = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            base["exception"] = record.exc_text
        return orjson.dumps(base, default=str).decode()
