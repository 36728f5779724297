"""`[gateway] log_format = "json"`: one JSON object per line, for log shippers.

Credentials are masked before this runs (the RedactingFilter on each handler rewrites the
message and traceback). A request's log record carries its fields (`request`, see keeper.py):
they become the object's keys.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from driftgate.proxy.observe.log_output import FORMAT, WORKER_FORMAT, LogHandler


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object per line: ts, level, logger, message (or request)."""

    def format(self, record: logging.LogRecord) -> str:
        """The line for `record`."""
        base: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        request = getattr(record, "request", None)
        if isinstance(request, dict):
            return orjson.dumps({**base, "event": "request", **request}).decode()
        base["message"] = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            base["exception"] = record.exc_text
        return orjson.dumps(base, default=str).decode()


def setup_logging(log_level: str, log_format: str, *, worker: bool = False) -> None:
    """The log format and level of `driftgate proxy` (a worker's lines carry its pid)."""
    lines = LogHandler(fmt=WORKER_FORMAT if worker else FORMAT)  # request lines by the batch
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO), handlers=[lines])
    if log_format == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
