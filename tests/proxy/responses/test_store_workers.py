"""The store as --workers N uses it: several `WorkerConversations` on one SQLite file, each
a worker with its own memory, reader and writer threads. Every worker resolves every stored turn;
the TTL and the bounds hold across them; a turn is filed once."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from driftgate.proxy.errors import InvalidRequest
from driftgate.proxy.responses import workers_store as workers_mod
from driftgate.proxy.responses import writer as writer_mod
from driftgate.proxy.responses.settings import ResponsesSettings
from driftgate.proxy.responses.sqlite_file import open_db
from driftgate.proxy.responses.store import Conversations
from driftgate.proxy.responses.workers_store import WorkerConversations


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def run(
    path: Path, n: int, body: Callable[..., Awaitable[None]], clock: Clock, **bounds: Any
) -> None:
    """`body(*workers)`: `n` workers on the file at `path`, closed afterwards."""

    async def main() -> None:
        settings = ResponsesSettings(**bounds)
        workers = [WorkerConversations(path, settings, clock=clock) for _ in range(n)]
        try:
            await body(*workers)
        finally:
            for w in workers:
                w.close()

    asyncio.run(main())


async def answered(conv: WorkerConversations, body: dict[str, Any], rid: str, text: str) -> None:
    """One translated exchange on `conv`: expanded, answered, filed before the answer ends."""
    expanded = conv.expand(body, await conv.load(body))
    out = {"id": f"msg_{rid}", "type": "message", "role": "assistant",
           "content": [{"type": "output_text", "text": text}]}  # fmt: skip
    await conv.file(expanded, {"id": rid, "output": [out]})


async def texts(conv: WorkerConversations, body: dict[str, Any]) -> list[str]:
    """What `body` expands to on `conv`, as the texts of its input items."""
    expanded = conv.expand(body, await conv.load(body))
    return [
        i["content"] if isinstance(i["content"], str) else i["content"][0]["text"]
        for i in expanded.body["input"]
    ]


async def stored(conv: WorkerConversations, rid: str) -> bool:
    try:
        await texts(conv, {"input": "more", "previous_response_id": rid})
    except InvalidRequest as exc:
        assert exc.openai_code == "previous_response_not_found"
        return False
    return True


def test_every_worker_resolves_every_turn_and_item(tmp_path: Path) -> None:
    async def body(a: WorkerConversations, b: WorkerConversations) -> None:
        await answered(a, {"input": "one"}, "resp_1", "first")
        await answered(b, {"input": "two", "previous_response_id": "resp_1"}, "resp_2", "second")
        await answered(a, {"input": "three", "previous_response_id": "resp_2"}, "resp_3", "third")
        want = ["one", "first", "two", "second", "three", "third", "four"]
        for worker in (a, b):
            assert await texts(worker, {"input": "four", "previous_response_id": "resp_3"}) == want
            assert worker.reads >= 1  # each holds only some of the chain
            ref = {"input": [{"type": "item_reference", "id": "msg_resp_2"}]}
            assert await texts(worker, ref) == ["second"]
        with pytest.raises(InvalidRequest, match="Previous response with id 'resp_9' not found"):
            await texts(b, {"input": "x", "previous_response_id": "resp_9"})
        with pytest.raises(InvalidRequest, match="Item with id 'msg_9' not found"):
            await texts(b, {"input": [{"type": "item_reference", "id": "msg_9"}]})

    run(tmp_path / "responses.sqlite3", 2, body, Clock())


def test_a_request_that_refers_to_nothing_stored_reads_nothing(tmp_path: Path) -> None:
    async def body(a: WorkerConversations) -> None:
        assert await a.load({"input": "hi"}) is None
        assert (
            await a.load({"input": [{"type": "message", "role": "user", "content": "x"}]}) is None
        )
        await answered(a, {"input": "one"}, "resp_1", "first")
        # What this worker filed itself is in its memory: no read either.
        loaded = await a.load({"input": "two", "previous_response_id": "resp_1"})
        assert loaded is not None and list(loaded.turns) == ["resp_1"]
        assert a.reads == 0

    run(tmp_path / "responses.sqlite3", 1, body, Clock())


def test_the_ttl_holds_for_every_worker(tmp_path: Path) -> None:
    clock = Clock()

    async def body(a: WorkerConversations, b: WorkerConversations) -> None:
        await answered(a, {"input": "one"}, "resp_1", "first")
        clock.now += 59
        assert await stored(a, "resp_1") and await stored(b, "resp_1")
        clock.now += 2
        assert not await stored(a, "resp_1") and not await stored(b, "resp_1")

    run(tmp_path / "responses.sqlite3", 2, body, clock, store_ttl_seconds=60)


def test_the_bounds_count_every_workers_turns_oldest_first(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "responses.sqlite3"

    async def body(a: WorkerConversations, b: WorkerConversations) -> None:
        for n in range(4):  # a files 0 and 2, b files 1 and 3: three turns may be kept
            clock.now += 1
            await answered((a, b)[n % 2], {"input": str(n)}, f"resp_{n}", f"answer {n}")
        # resp_0 is a's own, still in a's memory: a knows some worker evicted it.
        assert [await stored(a, f"resp_{n}") for n in range(4)] == [False, True, True, True]
        assert [await stored(b, f"resp_{n}") for n in range(4)] == [False, True, True, True]
        with pytest.raises(InvalidRequest):  # the evicted turn's items went with it
            await texts(a, {"input": [{"type": "item_reference", "id": "msg_resp_0"}]})

    run(path, 2, body, clock, store_max_items=3)
    with sqlite3.connect(path) as db:
        ids = sorted(r[0] for r in db.execute("SELECT id FROM turns"))
        assert ids == ["resp_1", "resp_2", "resp_3"]
        assert db.execute("SELECT turns FROM totals").fetchone() == (3,)
        assert sorted(r[0] for r in db.execute("SELECT id FROM items")) == [
            "msg_resp_1", "msg_resp_2", "msg_resp_3",
        ]  # fmt: skip


def test_the_byte_bound_counts_every_workers_turns(tmp_path: Path) -> None:
    clock = Clock()

    async def body(a: WorkerConversations, b: WorkerConversations) -> None:
        for n in range(4):
            clock.now += 1
            await answered((a, b)[n % 2], {"input": str(n)}, f"resp_{n}", str(n) * 1500)
        assert [await stored(b, f"resp_{n}") for n in range(4)] == [False, False, True, True]
        assert [await stored(a, f"resp_{n}") for n in range(4)] == [False, False, True, True]

    run(tmp_path / "responses.sqlite3", 2, body, clock, store_max_bytes=4096)


def test_a_turn_is_filed_once_and_totals_match_the_rows(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "responses.sqlite3"

    async def body(a: WorkerConversations, b: WorkerConversations) -> None:
        await answered(a, {"input": "one"}, "resp_1", "first")
        for worker in (a, b, a, b):  # reading a turn never files it again
            await texts(worker, {"input": "more", "previous_response_id": "resp_1"})
        await answered(b, {"input": "two", "previous_response_id": "resp_1"}, "resp_2", "second")

    run(path, 2, body, clock)
    with sqlite3.connect(path) as db:
        count, size = db.execute("SELECT count(*), sum(length(items)) FROM turns").fetchone()
        assert count == 2
        assert db.execute("SELECT turns, bytes FROM totals").fetchone() == (count, size)


def test_a_filing_whose_request_was_cancelled_leaves_the_writer_working(tmp_path: Path) -> None:
    async def body(a: WorkerConversations, b: WorkerConversations) -> None:
        for n in range(20):  # the client hung up while its turn was being filed
            task = asyncio.ensure_future(answered(a, {"input": str(n)}, f"resp_c{n}", "x"))
            await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await answered(a, {"input": "one"}, "resp_1", "first")
        assert await texts(b, {"input": "two", "previous_response_id": "resp_1"}) == [
            "one", "first", "two",
        ]  # fmt: skip

    run(tmp_path / "responses.sqlite3", 2, body, Clock())


def test_a_worker_starting_while_another_creates_the_file_warns_of_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The first start of --workers 2: one worker has made the file, its tables are not there yet.
    path = tmp_path / "responses.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE being_made (x)")

    async def body(a: WorkerConversations) -> None:
        await answered(a, {"input": "one"}, "resp_1", "first")
        assert await stored(a, "resp_1")

    with caplog.at_level("WARNING", "driftgate.responses"):
        run(path, 1, body, Clock())
    assert "unreadable" not in caplog.text


def test_workers_opening_a_new_file_at_once_all_get_it(tmp_path: Path) -> None:
    # Switching a new file to WAL can answer "database is locked" at once, past the busy
    # timeout: a fresh-clone CI run lost a worker's store to it. Many fresh files, three at once.
    for n in range(200):
        path = tmp_path / f"{n}.sqlite3"
        errors: list[BaseException] = []

        def open_it(path: Path = path, errors: list[BaseException] = errors) -> None:
            try:
                open_db(path).close()
            except sqlite3.Error as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [], (n, errors)


def test_workers_count_again_what_one_process_filed_without_totals(tmp_path: Path) -> None:
    """One process keeps no totals, no item rows and no index by age in the file (no triggers);
    workers opening it later count every turn, map every item to the latest turn that brought
    it and index the turns by age, and keep counting; one process again drops them."""
    path = tmp_path / "responses.sqlite3"

    def file(conn: sqlite3.Connection, ids: range) -> None:
        conn.executemany(  # each turn brings its own item and again the one of the turn before
            "INSERT INTO turns VALUES (?, NULL, 1.0 + ?, ?, ?)",
            [(f"resp_{n}", n, b"12345", f'["a{n}", "a{n - 1}"]') for n in ids],
        )

    def totals(conn: sqlite3.Connection) -> list[tuple[int, int]]:
        return conn.execute("SELECT turns, bytes FROM totals").fetchall()

    def items(conn: sqlite3.Connection) -> dict[str, str]:
        return dict(conn.execute("SELECT id, turn FROM items").fetchall())

    alone = open_db(path, shared=False)
    file(alone, range(3))
    assert totals(alone) == [] and items(alone) == {} and not _by_age(alone)
    alone.close()
    shared = open_db(path)
    assert _by_age(shared)
    assert totals(shared) == [(3, 15)]
    assert items(shared) == {"a-1": "resp_0", "a0": "resp_1", "a1": "resp_2", "a2": "resp_2"}
    file(shared, range(3, 5))
    shared.execute("DELETE FROM turns WHERE id = 'resp_0'")
    assert totals(shared) == [(4, 20)]
    shared.close()
    alone = open_db(path, shared=False)
    file(alone, range(5, 7))
    assert items(alone) == {} and not _by_age(alone)
    alone.close()
    again = open_db(path)
    try:
        assert totals(again) == [(6, 30)]
        assert items(again) == {f"a{n}": f"resp_{n + 1}" for n in range(6)} | {"a6": "resp_6"}
    finally:
        again.close()


def test_a_one_process_gateway_opening_the_file_does_not_stop_the_workers_filing(
    tmp_path: Path,
) -> None:
    """One process opening the file drops its totals (a second `driftgate proxy` on the same
    home, even one that then fails to bind): the workers count again and keep filing."""
    path = tmp_path / "responses.sqlite3"
    clock = Clock()

    async def body(w: WorkerConversations) -> None:
        await answered(w, {"input": "one"}, "resp_1", "first")
        open_db(path, shared=False).close()
        await answered(w, {"input": "two", "previous_response_id": "resp_1"}, "resp_2", "second")
        assert await stored(w, "resp_2")
        with contextlib.closing(sqlite3.connect(path)) as db:
            assert db.execute("SELECT turns FROM totals").fetchall() == [(2,)]
            assert db.execute("SELECT COUNT(*) FROM turns").fetchone() == (2,)
            assert _by_age(db)  # the turns indexed by age again, for the bounds and the TTL
        # and the totals kept from then on: the triggers are back, not only the row
        await answered(w, {"input": "three", "previous_response_id": "resp_2"}, "resp_3", "3")
        assert await stored(w, "resp_3")
        with contextlib.closing(sqlite3.connect(path)) as db:
            assert db.execute("SELECT turns FROM totals").fetchall() == [(3,)]

    run(path, 1, body, clock)


def test_a_worker_reads_the_items_of_turns_its_memory_let_go_of_from_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers_mod, "MEMORY_TURNS", 2)

    async def body(a: WorkerConversations) -> None:
        for n in range(4):
            await answered(a, {"input": str(n)}, f"resp_{n}", f"answer {n}")
        held = {"input": [{"type": "item_reference", "id": "msg_resp_3"}]}
        assert await texts(a, held) == ["answer 3"]
        assert a.reads == 0  # its turn is in memory: the item is found through it
        gone = {"input": [{"type": "item_reference", "id": "msg_resp_0"}]}
        assert await texts(a, gone) == ["answer 0"]
        assert a.reads == 1  # memory let go of resp_0 and its items: read from the file
        assert len(a._item_index) == 2  # only the items of the turns memory holds

    run(tmp_path / "responses.sqlite3", 1, body, Clock())


def test_a_filing_is_counted_written_before_its_waiter_hears(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer thread slow after it answers a filing (the loop runs first): the turns filed
    before it already count as written, so memory lets go of the oldest as the bound says."""
    monkeypatch.setattr(workers_mod, "MEMORY_TURNS", 2)
    answer = writer_mod._answer

    def answer_then_pause(done: Any, exc: BaseException | None) -> None:
        answer(done, exc)
        time.sleep(0.02)  # the woken loop files the next turn meanwhile

    monkeypatch.setattr(writer_mod, "_answer", answer_then_pause)

    async def body(a: WorkerConversations) -> None:
        for n in range(4):
            await answered(a, {"input": str(n)}, f"resp_{n}", f"answer {n}")
            assert len(a._turns) == min(n + 1, 2)
        assert sorted(a._item_index) == ["msg_resp_2", "msg_resp_3"]

    run(tmp_path / "responses.sqlite3", 1, body, Clock())


def _by_age(conn: sqlite3.Connection) -> bool:
    """The file has its index of the turns by age (workers keep one, one process drops it)."""
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'turns_created'").fetchone()
    return found is not None


def test_a_worker_holds_a_turn_until_the_file_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More filings queued than memory holds (the writer held up by another writer's lock):
    the oldest of them still resolves from memory, not from a file that does not hold it yet."""
    monkeypatch.setattr(workers_mod, "MEMORY_TURNS", 2)
    path = tmp_path / "responses.sqlite3"

    async def body(w: WorkerConversations) -> None:
        await answered(w, {"input": "zero"}, "resp_0", "answer 0")  # the writer has the file
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as blocker:
            blocker.execute("BEGIN IMMEDIATE")
            for n in range(1, 6):  # queued without waiting for the file
                out = {"id": f"msg_resp_{n}", "type": "message", "role": "assistant",
                       "content": [{"type": "output_text", "text": str(n)}]}  # fmt: skip
                w.remember(w.expand({"input": str(n)}), {"id": f"resp_{n}", "output": [out]})
            assert await stored(w, "resp_1")
            assert w.reads == 0
            blocker.execute("COMMIT")

    run(path, 1, body, Clock())


def test_one_process_on_the_file_of_live_workers_drops_nothing_they_keep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-process gateway opening the file live workers use (a second `driftgate proxy` on the
    same home) leaves their totals, triggers, item rows and index by age alone: a worker still
    resolves an item its memory let go of without filing first, and the totals count the one
    process's turns too. With no worker live, one process drops them as before."""
    monkeypatch.setattr(workers_mod, "MEMORY_TURNS", 1)
    path = tmp_path / "responses.sqlite3"
    clock = Clock()

    async def body(w: WorkerConversations) -> None:
        await answered(w, {"input": "one"}, "resp_1", "first")
        await answered(w, {"input": "two"}, "resp_2", "second")  # memory let go of resp_1
        alone = Conversations(path, clock=clock)
        out = {"id": "msg_alone", "type": "message", "role": "assistant", "content": "x"}
        alone.remember(alone.expand({"input": "three"}), {"id": "resp_3", "output": [out]})
        alone.close()  # its turn is written
        ref = {"input": [{"type": "item_reference", "id": "msg_resp_1"}]}
        assert await texts(w, ref) == ["first"]
        with contextlib.closing(sqlite3.connect(path)) as db:
            assert db.execute("SELECT turns FROM totals").fetchall() == [(3,)]
            assert _by_age(db)

    run(path, 1, body, clock)
    with contextlib.closing(open_db(path, shared=False)) as db:  # no worker live now
        assert not _by_age(db)
        assert db.execute("SELECT count(*) FROM items").fetchone() == (0,)
