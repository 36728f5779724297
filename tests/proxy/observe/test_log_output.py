"""The proxy's log handler: request lines written a batch at a time, everything else at once."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from driftgate.proxy.observe.log_output import (
    FORMAT,
    WORKER_FORMAT,
    LineFormatter,
    LogHandler,
    direct_handler,
    end_batch,
)
from driftgate.proxy.redact import RedactingFilter, Redactor


def _logger(name: str, handler: logging.Handler) -> logging.Logger:
    log = logging.getLogger(name)
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    return log


def _record(log: logging.Logger, msg: str, created: float, *, batched: bool) -> logging.LogRecord:
    record = log.makeRecord(log.name, logging.INFO, __file__, 0, "%s", (msg,), None)
    record.created = created
    record.msecs = (created - int(created)) * 1000.0
    if batched:
        record.batched = True
    return record


def test_batched_lines_wait_for_the_batch_end_and_others_go_out_at_once(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    with path.open("w", buffering=1 << 16) as stream:
        log = _logger("test.log_output.batch", LogHandler(stream))
        log.handle(_record(log, "request one", 1.0, batched=True))
        log.handle(_record(log, "request two", 2.0, batched=True))
        assert path.read_text() == ""  # held: one write for the whole batch
        end_batch(log)
        assert path.read_text().splitlines()[1].endswith("request two")
        log.handle(_record(log, "a warning", 3.0, batched=False))
        assert path.read_text().splitlines()[-1].endswith("a warning")  # never held


@pytest.mark.parametrize("fmt", [FORMAT, WORKER_FORMAT], ids=["one-process", "worker"])
def test_lines_read_as_the_standard_formatter_writes_them(fmt: str) -> None:
    ours, standard = LineFormatter(fmt), logging.Formatter(fmt)
    assert ours.plain  # written by the f-string, not by logging's %-style
    log = logging.getLogger("test.log_output.format")
    for created in (1_700_000_000.0, 1_700_000_000.9994, 1_700_000_001.05, 1_700_000_000.5):
        record = _record(log, "chat gpt -> openai (gpt) 200 3 ms", created, batched=True)
        assert ours.format(record) == standard.format(record)


class _Writes:
    """A text stream that keeps each write (what reaches write(2) when the stream is stderr)."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_a_batch_goes_out_in_few_writes_each_whole_lines_within_pipe_buf() -> None:
    stream = _Writes()
    log = _logger("test.log_output.chunks", LogHandler(stream))  # type: ignore[arg-type]
    for i in range(100):
        log.handle(_record(log, f"request {i:03d} " + "x" * 60, 1.0 + i, batched=True))
    end_batch(log)
    assert len(stream.writes) == 4  # ~130 characters a line: 31 a write
    assert all(len(w.encode()) <= 4096 and w.endswith("\n") for w in stream.writes)
    lines = "".join(stream.writes).splitlines()
    assert [ln[-64:-61] for ln in lines] == [f"{i:03d}" for i in range(100)]  # all, in order


def test_lines_with_wide_characters_still_go_in_writes_within_pipe_buf() -> None:
    stream = _Writes()
    log = _logger("test.log_output.wide", LogHandler(stream))  # type: ignore[arg-type]
    for i in range(100):  # 4 bytes a character in UTF-8: ~300 bytes a line
        log.handle(_record(log, f"request {i:03d} " + "\U0001f600" * 60, 1.0 + i, batched=True))
    end_batch(log)
    assert all(len(w.encode()) <= 4096 and w.endswith("\n") for w in stream.writes)
    assert len(stream.writes) >= 100 * 300 // 4096
    assert len("".join(stream.writes).splitlines()) == 100


def test_a_plain_chain_has_a_direct_handler_and_anything_else_on_the_way_has_none() -> None:
    handler = LogHandler(_Writes())  # type: ignore[arg-type]
    log = _logger("test.log_output.direct", handler)
    assert direct_handler(log) is handler
    handler.addFilter(RedactingFilter(Redactor(["bench-key"])))
    assert direct_handler(log) is handler  # the gateway's redaction is applied to each line
    handler.addFilter(lambda record: True)
    assert direct_handler(log) is None  # any other filter must see each record
    handler.filters[1:] = []
    log.addFilter(lambda record: True)
    assert direct_handler(log) is None
    log.filters.clear()
    other = logging.NullHandler()
    log.addHandler(other)
    assert direct_handler(log) is None  # another handler (a test's capture) must see them
    log.removeHandler(other)
    handler.setFormatter(LineFormatter(WORKER_FORMAT))
    assert direct_handler(log) is handler  # a worker's lines (its pid after the name) too
    handler.setFormatter(LineFormatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    assert direct_handler(log) is None  # not a format of the gateway's
    handler.setFormatter(logging.Formatter())
    assert direct_handler(log) is None


@pytest.mark.parametrize("fmt", [FORMAT, WORKER_FORMAT], ids=["one-process", "worker"])
@pytest.mark.parametrize("secrets", [True, False], ids=["with-secrets", "nothing-to-redact"])
def test_lines_written_directly_are_the_lines_logging_writes(secrets: bool, fmt: str) -> None:
    # Seconds shared and not, back in time, milliseconds at both ends, levels interleaved.
    times = (1_700_000_000.0, 1_700_000_000.9994, 1_700_000_001.05, 1_700_000_061.5,
             1_700_000_061.0009, 1_700_000_000.999, 12.3456, 0.0)  # fmt: skip
    levels = (logging.INFO, logging.WARNING, logging.INFO, logging.INFO, logging.WARNING,
              logging.INFO, logging.ERROR, logging.INFO)  # fmt: skip
    models = ("m", "sk-abcdefghijklmnop", "secret-key-1", "m", "m", "é", "m", "m")
    if not secrets:  # the batch is checked once and no line is redacted on its own
        models = tuple("m" if "s" in model else model for model in models)
    lines = [
        (t, lv, f"messages {model} -> b (m) 200 {n} ms")
        for n, (t, lv, model) in enumerate(zip(times, levels, models, strict=True))
    ]
    through_logging, direct = _Writes(), _Writes()
    redacting = RedactingFilter(Redactor(["secret-key-1"]))
    logging_handler = LogHandler(through_logging)  # type: ignore[arg-type]
    logging_handler.setFormatter(logging.Formatter(fmt))  # logging's own %-style formatting
    logging_handler.addFilter(redacting)
    log = _logger("test.log_output.same", logging_handler)
    for created, level, message in lines:
        record = _record(log, message, created, batched=True)
        record.levelno, record.levelname = level, logging.getLevelName(level)
        log.handle(record)
    end_batch(log)
    handler = LogHandler(direct, fmt)  # type: ignore[arg-type]
    handler.addFilter(redacting)
    handler.setLevel(logging.INFO)
    handler.write_lines(log.name, [*lines, (times[0], logging.DEBUG, "below the handler's level")])
    assert "".join(direct.writes) == "".join(through_logging.writes)
    written = "".join(direct.writes)
    assert len(written.splitlines()) == len(times)
    if fmt == WORKER_FORMAT:
        assert written.count(f" {log.name}[{os.getpid()}]: ") == len(times)
    assert "sk-abcdefghijklmnop" not in written and "secret-key-1" not in written
