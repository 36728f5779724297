"""Where `driftgate proxy` logs: stderr, request lines written a batch at a time.

The recorder's thread logs each finished request as its own record (its own timestamp and
level). sys.stderr is line-buffered, so each line was a write(2) of its own. Request records
are marked `batched`: the handler holds their lines until the batch has been logged
(`end_batch`), then writes them a few at a time; any other record is written at once (after
the lines it holds), so warnings and errors are never held back.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import TextIO, cast

from driftgate.proxy.redact import RedactingFilter

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A worker of `--workers N`: the same line with the worker's pid after the logger's name.
WORKER_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"
BATCHED = "batched"  # a LogRecord attribute: part of a batch, written at the batch's end
# Lines go out in writes of at most this many bytes (PIPE_BUF on Linux): a write that size to a
# pipe is atomic, so the lines of several workers never interleave. A line counts its length in
# UTF-8 at most: its characters when it is ASCII, else four bytes a character.
CHUNK_BYTES = 4096
_NO_SECOND = -(2**62)  # before any line's second
_MILLIS = tuple(f",{ms:03d}" for ms in range(1000))  # a line's milliseconds, looked up


class LineFormatter(logging.Formatter):
    """A text format whose date and time are formatted once a second, not once a line."""

    def __init__(self, fmt: str = FORMAT) -> None:
        super().__init__(fmt)
        self._second: int | None = None
        self._stamp = ""
        # The two formats the gateway sets are written without the %-style machinery.
        self.plain = fmt in (FORMAT, WORKER_FORMAT)
        self._with_pid = fmt == WORKER_FORMAT

    def format(self, record: logging.LogRecord) -> str:
        """The line, as logging.Formatter writes it; the gateway's formats by one f-string."""
        if not self.plain or record.exc_info or record.exc_text or record.stack_info:
            return super().format(record)
        if self._with_pid and type(record.process) is not int:
            return super().format(record)  # logging.logProcesses off: logging's own error
        record.message = message = record.getMessage()
        record.asctime = asctime = self.formatTime(record)
        pid = f"[{record.process}]" if self._with_pid else ""
        return f"{asctime} {record.levelname} {record.name}{pid}: {message}"

    def name_suffix(self) -> str:
        """What follows the logger's name in a line written now: `[pid]` in a worker's format."""
        return f"[{os.getpid()}]" if self._with_pid else ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """`YYYY-MM-DD HH:MM:SS,mmm` in local time, as logging.Formatter writes it."""
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return f"{self._stamp_of(int(record.created))},{int(record.msecs):03d}"

    def line(self, created: float, levelname: str, name: str, message: str) -> str:
        """The line `format` writes for a record of this time, level, logger and message."""
        second = int(created)
        msecs = int((created - second) * 1000.0)  # as LogRecord and keeper's records compute it
        return f"{self._stamp_of(second)},{msecs:03d} {levelname} {name}: {message}"

    def stamp(self, second: int) -> str:
        """`YYYY-MM-DD HH:MM:SS` of a whole second, in local time (the last one kept)."""
        return self._stamp_of(second)

    def _stamp_of(self, second: int) -> str:
        if second != self._second:
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return self._stamp


class LogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler (stderr by default) that holds `batched` lines until `flush`."""

    def __init__(self, stream: TextIO | None = None, fmt: str = FORMAT) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.setFormatter(LineFormatter(fmt))
        self._held: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Hold a batched record's line; write any other at once, after what is held."""
        try:
            self._held.append(self.format(record) + self.terminator)
            if not getattr(record, BATCHED, False):
                self._write_held()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def write_lines(self, name: str, lines: Sequence[tuple[float, int, str]]) -> None:
        """Write lines of logger `name` (time, level, message) as records would be written.

        Only for a handler `direct_handler` returned: no record is made or formatted, and its
        filters (redaction) rewrite each message as they would rewrite a record's.
        """
        formatter = cast(LineFormatter, self.formatter)
        terminator, level = self.terminator, self.level
        filters = [cast(RedactingFilter, f) for f in self.filters]
        if filters:  # a batch with nothing to redact anywhere is not redacted line by line
            joined = "\n".join([line[2] for line in lines])
            filters = [f for f in filters if not f.leaves(joined)]
        rewrites = [f.message for f in filters]
        heads: dict[int, str] = {}  # " LEVEL name: " per level, made once a batch
        named = name + formatter.name_suffix()
        second, stamp = _NO_SECOND, ""
        self.acquire()
        try:
            held = self._held
            for created, levelno, message in lines:
                if levelno >= level:
                    for rewrite in rewrites:
                        message = rewrite(message)
                    head = heads.get(levelno)
                    if head is None:
                        head = heads[levelno] = f" {logging.getLevelName(levelno)} {named}: "
                    # LineFormatter.line, inline: a batch's lines share their second's stamp
                    if int(created) != second:
                        second = int(created)
                        stamp = formatter.stamp(second)
                    msecs = int((created - second) * 1000.0)
                    millis = _MILLIS[msecs] if 0 <= msecs < 1000 else f",{msecs:03d}"
                    held.append(f"{stamp}{millis}{head}{message}{terminator}")
            self._write_held()
        except RecursionError:
            raise
        except Exception:
            self.handleError(logging.makeLogRecord({"name": name, "msg": "request lines"}))
        finally:
            self.release()

    def flush(self) -> None:
        """Write the held lines, then flush the stream."""
        self.acquire()
        try:
            self._write_held()
        finally:
            self.release()

    def _write_held(self) -> None:
        held, self._held = self._held, []
        stream = self.stream
        chunk: list[str] = []
        size = 0
        for line in held:
            length = len(line) if line.isascii() else 4 * len(line)
            if chunk and size + length > CHUNK_BYTES:
                stream.write("".join(chunk))
                stream.flush()
                chunk, size = [], 0
            chunk.append(line)
            size += length
        if chunk:
            stream.write("".join(chunk))
        if stream and hasattr(stream, "flush"):
            stream.flush()


def direct_handler(logger: logging.Logger) -> LogHandler | None:
    """The one handler that would write `logger`'s records, when writing its lines straight to it
    is the same as logging them: a LogHandler in one of the gateway's text formats (a worker's
    too), filtered by nothing but the gateway's redaction, no other handler on the way (a test's
    capture, a user's handler). Else None: log records as usual."""
    if logger.disabled or logger.filters:
        return None
    found: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        found += current.handlers
        current = current.parent if current.propagate else None
    if len(found) != 1:
        return None
    (handler,) = found
    if type(handler) is not LogHandler:
        return None
    if not all(type(f) is RedactingFilter for f in handler.filters):
        return None  # a filter that may drop or change a record must see it
    formatter = handler.formatter
    if type(formatter) is not LineFormatter or not formatter.plain:
        return None
    if formatter.name_suffix() and not logging.logProcesses:
        return None  # a record would carry no pid: logging's own error, not ours
    return handler


def end_batch(logger: logging.Logger) -> None:
    """Write the batched lines `logger`'s handlers (its own and its ancestors') hold."""
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            handler.flush()
        current = current.parent if current.propagate else None
