"""The stored-Responses writer thread: filings that queue up share one transaction, and one that
cannot be written fails alone, every other filing of its batch committed and answered."""

from __future__ import annotations

import concurrent.futures
import sqlite3
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from driftgate.proxy.responses.settings import ResponsesSettings
from driftgate.proxy.responses.sqlite_file import CHUNK
from driftgate.proxy.responses.turns import Turn
from driftgate.proxy.responses.writer import BATCH, GATHER_STEPS, Put, Writer


def put(n: int, created: Any = 1.0e9) -> Put:
    item = {"id": f"msg_{n}", "type": "message", "role": "user", "content": f"turn {n}"}
    return Put(
        f"resp_{n}",
        Turn(None, created, [item]),
        orjson.dumps([item]),
        [item["id"]],
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
        turns = dict(db.execute("SELECT id, named FROM turns").fetchall())
    assert turns == {f"resp_{n}": f'["msg_{n}"]' for n in range(40)}


def test_in_one_process_filings_gather_for_a_moment_and_share_one_commit(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    naps: list[float] = []
    later = [put(n) for n in range(1, 30)]

    def nap(seconds: float) -> None:  # the filings of the next moments arrive while it waits
        if not naps:
            for job in later:
                writer.put(job)
        naps.append(seconds)

    writer = Writer(path, ResponsesSettings(), clock=lambda: 1.0e9, gather=0.05, sleep=nap)
    first = Put("resp_0", Turn(None, 1.0e9, []), b"[]", [], None)  # nobody waits for it
    writer.start()
    writer.put(first)
    for job in later:
        assert job.done is not None
        job.done.result(timeout=5)  # committed together with the first
    writer.stop()
    assert sum(naps) == pytest.approx(0.05)  # one pause for all thirty, none at the stop
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 30


def test_a_filing_someone_waits_for_is_committed_without_gathering(tmp_path: Path) -> None:
    naps: list[float] = []
    writer = Writer(
        tmp_path / "responses.sqlite3", ResponsesSettings(), gather=0.05, sleep=naps.append
    )
    writer.start()
    job = put(1)
    writer.put(job)
    assert job.done is not None
    assert job.done.exception(timeout=5) is None
    writer.stop()
    assert naps == []


def test_a_writer_behind_takes_a_full_batch_without_pausing(tmp_path: Path) -> None:
    naps: list[float] = []
    writer = Writer(
        tmp_path / "responses.sqlite3",
        ResponsesSettings(),
        clock=lambda: 1.0e9,
        gather=0.05,
        sleep=naps.append,
    )
    jobs = [Put(f"resp_{n}", Turn(None, 1.0e9, []), b"[]", [], None) for n in range(BATCH + 10)]
    for job in jobs:
        writer.put(job)
    writer.start()  # a full batch at once; only the ten left pause for company
    writer.stop()
    assert sum(naps) == pytest.approx(0.05) and len(naps) == GATHER_STEPS
    with sqlite3.connect(tmp_path / "responses.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == BATCH + 10


def test_the_pause_ends_once_a_batch_is_waiting(tmp_path: Path) -> None:
    """Memory keeps the latest turns only: a turn must reach the file before it leaves memory,
    so filings never gather beyond a batch, however fast they come."""
    naps: list[float] = []
    arrived = threading.Event()
    burst = [Put(f"resp_{n}", Turn(None, 1.0e9, []), b"[]", [], None) for n in range(1, BATCH)]

    def nap(seconds: float) -> None:  # a batch's worth arrives during the first step
        if not naps:
            for job in burst:
                writer.put(job)
            arrived.set()
        naps.append(seconds)

    writer = Writer(
        tmp_path / "responses.sqlite3",
        ResponsesSettings(),
        clock=lambda: 1.0e9,
        gather=0.05,
        sleep=nap,
    )
    writer.start()
    writer.put(Put("resp_0", Turn(None, 1.0e9, []), b"[]", [], None))
    assert arrived.wait(timeout=5)
    writer.stop()
    assert len(naps) == 1 and naps[0] < 0.05
    with sqlite3.connect(tmp_path / "responses.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == BATCH


def test_a_batch_files_and_evicts_in_order_even_when_an_evicted_id_is_filed_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "responses.sqlite3"
    writer = Writer(path, ResponsesSettings(), clock=lambda: 1.0e9)
    first, second, again = put(1, created=1.0e9), put(2, created=1.0e9 + 1), put(1, 1.0e9 + 2)
    second.evicted = ["resp_1"]  # filing resp_2 pushed resp_1 out
    for job in (first, second, again):  # then resp_1 is filed again: it stays
        writer.put(job)
    writer.start()  # one batch
    writer.stop()
    with sqlite3.connect(path) as db:
        turns = dict(db.execute("SELECT id, created FROM turns").fetchall())
    assert turns == {"resp_1": 1.0e9 + 2, "resp_2": 1.0e9 + 1}
    assert all(
        job.done is not None and job.done.exception(timeout=5) is None
        for job in (first, second, again)
    )


def _with_eviction(job: Put, ids: list[str]) -> Put:
    job.evicted = ids
    return job


def test_a_batch_deletes_only_what_each_eviction_would_have_in_queue_order(
    tmp_path: Path,
) -> None:
    """An eviction never reaches a turn filed after it in the same batch: a turn of a request
    that began earlier than the kept one, or one filed after a turn too big for the byte cap
    took everything with it."""
    path = tmp_path / "responses.sqlite3"
    writer = Writer(path, ResponsesSettings(), clock=lambda: 2000.0)
    jobs = [
        put(0, created=999.0),
        _with_eviction(put(1, created=1001.0), ["resp_0"]),  # finished first
        _with_eviction(put(2, created=1000.0), ["resp_1"]),  # began first: kept
        _with_eviction(put(3, created=1500.0), ["resp_2", "resp_3"]),  # too big
        put(4, created=1600.0),
    ]
    for job in jobs:
        assert writer.put(job)
    writer.start()  # one batch
    writer.stop()
    for job in jobs:
        assert job.done is not None and job.done.exception(timeout=5) is None
    with sqlite3.connect(path) as db:
        turns = {row[0] for row in db.execute("SELECT id FROM turns")}
    assert turns == {"resp_4"}


def test_a_batch_of_any_size_is_written_and_evicted_exactly(tmp_path: Path) -> None:
    """Rows go CHUNK to a statement and the rest in powers of two: every count comes out whole."""
    path = tmp_path / "responses.sqlite3"
    writer = Writer(path, ResponsesSettings(), clock=lambda: 1.0e9)
    count = 2 * CHUNK + 23  # 64 + 64 + 16 + 4 + 2 + 1
    jobs = [put(n, created=1.0e9 + n) for n in range(count)]
    for n, job in enumerate(jobs):
        if n % 3:  # two turns in three continue the one before; the rest start a conversation
            job.turn.previous = f"resp_{n - 1}"
    jobs[-1].evicted = [f"resp_{n}" for n in range(CHUNK + 5)]
    for job in jobs:
        writer.put(job)
    writer.start()  # one batch
    writer.stop()
    with sqlite3.connect(path) as db:
        turns = db.execute("SELECT id, previous, created, items, named FROM turns").fetchall()
    kept = range(CHUNK + 5, count)
    assert sorted(turns) == sorted(
        (f"resp_{n}", f"resp_{n - 1}" if n % 3 else None, 1.0e9 + n, jobs[n].blob, f'["msg_{n}"]')
        for n in kept
    )
