"""The request log: one line per finished request, written by the batch on the recorder's
thread (text straight to the stderr handler, or a LogRecord each for other handlers and JSON)."""

from __future__ import annotations

import logging
from typing import Any

from driftgate.proxy.observe.log_output import BATCHED, direct_handler, end_batch
from driftgate.proxy.observe.records import RequestRecord

log = logging.getLogger("driftgate.requests")


def write_lines(rows: list[RequestRecord], reasons: list[str | None], log_json: bool) -> None:
    """One log line per request, stamped when it finished (not when the batch was written)."""
    handler = None if log_json else direct_handler(log)
    if handler is not None:  # the default stderr text log: lines straight to its handler
        info, warning = log.isEnabledFor(logging.INFO), log.isEnabledFor(logging.WARNING)
        lines = []
        for rec, reason in zip(rows, reasons, strict=True):
            # _level, inline: a call per line cost as much as the test
            if rec.status >= 500 and rec.outcome is None:
                if warning:
                    lines.append((rec.ts, logging.WARNING, _line(rec, reason)))
            elif info:
                lines.append((rec.ts, logging.INFO, _line(rec, reason)))
        if lines:
            handler.write_lines(log.name, lines)
        return
    logged = False
    made: logging.LogRecord | None = None
    for rec, reason in zip(rows, reasons, strict=True):  # a record each, built only if shown
        level = _level(rec)
        if log.isEnabledFor(level):
            if made is None:
                made = log.makeRecord(log.name, level, __file__, 0, "%s", (), None)
            record = _request_record(made, level, _line(rec, reason), rec.ts)
            if log_json:
                record.request = _fields(rec, reason)  # the JSON formatter writes these fields
            log.handle(record)
            logged = True
    if logged:
        end_batch(log)


def _level(rec: RequestRecord) -> int:
    """WARNING when the gateway or upstream failed the request, else INFO (a refusal is the guard
    doing its job: it warned once when it halted)."""
    return logging.WARNING if rec.status >= 500 and rec.outcome is None else logging.INFO


def _request_record(made: logging.LogRecord, level: int, line: str, ts: float) -> logging.LogRecord:
    """A request's log record: a copy of one the logger made on this thread for this batch, with
    its own level, line and time.

    Making each with makeRecord cost about a third of a request line (LogRecord.__init__ reads
    the thread, the process and the source file's name every time); they are the same for all.
    """
    record = made.__class__.__new__(made.__class__)
    fields = record.__dict__
    fields.update(made.__dict__)
    fields["levelno"] = level
    fields["levelname"] = logging.getLevelName(level)
    fields["args"] = (line,)
    fields["created"] = ts
    fields["msecs"] = (ts - int(ts)) * 1000.0
    fields[BATCHED] = True  # written with the batch's other lines, at end_batch
    return record


def _line(rec: RequestRecord, reason: str | None) -> str:
    return (
        f"{rec.endpoint} {rec.model_requested} -> {rec.backend} "
        f"({rec.model}) {rec.status} {rec.latency_ms:.0f} ms" + (f" ({reason})" if reason else "")
    )


def _fields(rec: RequestRecord, reason: str | None) -> dict[str, Any]:
    """What a JSON log line says about a request (metadata only)."""
    return {
        "request_id": rec.request_id,
        "endpoint": rec.endpoint,
        "model_requested": rec.model_requested,
        "backend": rec.backend,
        "model": rec.model,
        "status": rec.status,
        "latency_ms": round(rec.latency_ms, 1),
        "input_tokens": rec.input_tokens,
        "output_tokens": rec.output_tokens,
        "cost_usd": rec.cost_usd,
        "client": rec.client,
        "session": rec.session,
        **({"reason": reason} if reason else {}),
        **({"outcome": rec.outcome} if rec.outcome else {}),
    }
