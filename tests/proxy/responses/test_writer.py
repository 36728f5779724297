"""The stored-Responses writer thread: filings that queue up share one transaction, and one that
cannot be written fails alone, every other filing of its batch committed and answered."""

from __future__ import annotations

import concurrent.futures
import sqlite3
from pathlib import Path
from typing import Any

import orjson

from driftgate.proxy.responses.settings import ResponsesSettings
from driftgate.proxy.responses.sqlite_file import Put, Writer
from driftgate.proxy.responses.turns import Turn


def put(n: int, created: Any = 1.0e9) -> Put:
    item = {"id": f"msg_{n}", "type": "message", "role": "user", "content": f"turn {n}"}
    return Put(
        f"resp_{n}",
        Turn(None, created, [item]),
        orjson.dumps([item]),
        [item],
        concurrent.futures.Future(),
    )


def test_queued_filings_are_written_together_and_a_bad_one_fails_alone(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    writer = Writer(path, ResponsesSettings(), clock=lambda: 1.0e9)
    jobs = [put(n) for n in range(40)]
    jobs.insert(17, put(999, created=None))  # NOT NULL: this row cannot be written
    for job in jobs:
        assert writer.put(job)
    writer.start()  # every job is queued already: they come out as one batch
    writer.stop()
    outcomes = {job.response_id: job.done.exception(timeout=5) for job in jobs if job.done}
    assert isinstance(outcomes.pop("resp_999"), sqlite3.IntegrityError)
    assert set(outcomes.values()) == {None} and len(outcomes) == 40
    with sqlite3.connect(path) as db:
        ids = {row[0] for row in db.execute("SELECT id FROM turns")}
        items = db.execute("SELECT COUNT(*) FROM items").fetchone()[0]
    assert ids == {f"resp_{n}" for n in range(40)} and items == 40
