"""Stored Responses conversations: expand, remember, TTL, bounds, SQLite persistence."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from driftgate.proxy.errors import InvalidRequest
from driftgate.proxy.responses import store as store_mod
from driftgate.proxy.responses.settings import ResponsesSettings
from driftgate.proxy.responses.store import Conversations
from driftgate.proxy.responses.writer import PRUNE_EVERY

TTL = ResponsesSettings().store_ttl_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def answered(conv: Conversations, body: dict[str, Any], rid: str, text: str) -> None:
    out = {"id": f"msg_{rid}", "type": "message", "role": "assistant",
           "content": [{"type": "output_text", "text": text}]}  # fmt: skip
    conv.remember(conv.expand(body), {"id": rid, "output": [out]})


def test_a_chain_is_written_out_in_order_without_previous_response_id(tmp_path: Path) -> None:
    conv = Conversations(None)
    answered(conv, {"input": "one"}, "resp_1", "first")
    answered(conv, {"input": "two", "previous_response_id": "resp_1"}, "resp_2", "second")
    exp = conv.expand({"model": "m", "input": [{"role": "user", "content": "three"}],
                       "previous_response_id": "resp_2"})  # fmt: skip
    assert "previous_response_id" not in exp.body and exp.previous == "resp_2"
    texts = [
        i["content"] if isinstance(i["content"], str) else i["content"][0]["text"]
        for i in exp.body["input"]
    ]
    assert texts == ["one", "first", "two", "second", "three"]


def test_unknown_ids_and_references_are_the_real_apis_400() -> None:
    conv = Conversations(None)
    with pytest.raises(InvalidRequest) as info:
        conv.expand({"input": "x", "previous_response_id": "resp_missing"})
    assert info.value.openai_code == "previous_response_not_found"
    assert info.value.param == "previous_response_id" and info.value.status == 400
    with pytest.raises(InvalidRequest, match="Item with id 'msg_x' not found"):
        conv.expand({"input": [{"type": "item_reference", "id": "msg_x"}]})


def test_store_false_is_not_kept() -> None:
    conv = Conversations(None)
    conv.remember(conv.expand({"input": "x", "store": False}), {"id": "resp_1", "output": []})
    with pytest.raises(InvalidRequest):
        conv.expand({"input": "y", "previous_response_id": "resp_1"})


def test_turns_expire_after_the_ttl() -> None:
    clock = Clock()
    conv = Conversations(None, clock=clock)
    answered(conv, {"input": "one"}, "resp_1", "first")
    clock.now += TTL + 1
    with pytest.raises(InvalidRequest):
        conv.expand({"input": "two", "previous_response_id": "resp_1"})


def test_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_mod, "MEMORY_TURNS", 3)
    conv = Conversations(None)
    for n in range(5):
        answered(conv, {"input": str(n)}, f"resp_{n}", "x")
    with pytest.raises(InvalidRequest):
        conv.expand({"input": "y", "previous_response_id": "resp_0"})
    assert conv.expand({"input": "y", "previous_response_id": "resp_4"}).body["input"]


def test_turns_survive_a_restart_in_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    conv = Conversations(path)
    answered(conv, {"input": "one"}, "resp_1", "first")
    answered(conv, {"input": "two", "previous_response_id": "resp_1"}, "resp_2", "second")
    conv.close()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again = Conversations(path)
    try:
        items = again.expand({"input": "three", "previous_response_id": "resp_2"}).body["input"]
        assert len(items) == 5
        ref = again.expand({"input": [{"type": "item_reference", "id": "msg_resp_1"}]})
        assert ref.body["input"][0]["content"][0]["text"] == "first"
    finally:
        again.close()


def test_old_turns_are_pruned_from_sqlite(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "responses.sqlite3"
    conv = Conversations(path, clock=clock)
    answered(conv, {"input": "old"}, "resp_old", "x")
    conv.close()
    clock.now += TTL + 1
    conv = Conversations(path, clock=clock)  # the writer prunes when it opens the database
    answered(conv, {"input": "new"}, "resp_new", "y")
    conv.close()
    import sqlite3

    with sqlite3.connect(path) as db:
        ids = [r[0] for r in db.execute("SELECT id FROM turns")]
    assert ids == ["resp_new"]


def _stored(conv: Conversations, response_id: str) -> bool:
    try:
        conv.expand({"input": "more", "previous_response_id": response_id})
    except InvalidRequest as exc:
        assert exc.openai_code == "previous_response_not_found"
        return False
    return True


def test_a_configured_ttl_expires_turns_and_their_items() -> None:
    clock = Clock()
    conv = Conversations(None, ResponsesSettings(store_ttl_seconds=60), clock=clock)
    answered(conv, {"input": "one"}, "resp_1", "first")
    clock.now += 59
    assert _stored(conv, "resp_1")
    clock.now += 2
    assert not _stored(conv, "resp_1")
    with pytest.raises(InvalidRequest, match="Item with id 'msg_resp_1' not found"):
        conv.expand({"input": [{"type": "item_reference", "id": "msg_resp_1"}]})


def test_the_item_cap_evicts_the_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    clock = Clock()
    conv = Conversations(path, ResponsesSettings(store_max_items=2), clock=clock)
    for n in range(3):
        clock.now += 1
        answered(conv, {"input": str(n)}, f"resp_{n}", f"answer {n}")
    assert [_stored(conv, f"resp_{n}") for n in range(3)] == [False, True, True]
    with pytest.raises(InvalidRequest):  # the evicted turn's items went with it
        conv.expand({"input": [{"type": "item_reference", "id": "msg_resp_0"}]})
    conv.close()
    # The bound holds in SQLite too, and for a restart with a smaller one.
    again = Conversations(path, ResponsesSettings(store_max_items=1), clock=clock)
    try:
        assert [_stored(again, f"resp_{n}") for n in range(3)] == [False, False, True]
        with pytest.raises(InvalidRequest):
            again.expand({"input": [{"type": "item_reference", "id": "msg_resp_1"}]})
        assert again.expand({"input": [{"type": "item_reference", "id": "msg_resp_2"}]}).body
    finally:
        again.close()
    import sqlite3

    with sqlite3.connect(path) as db:
        # One turn, its items once (one process keeps no item rows: its memory maps them).
        assert db.execute("SELECT id, named FROM turns").fetchall() == [
            ("resp_2", '["msg_resp_2"]')
        ]
        assert db.execute("SELECT count(*) FROM items").fetchone() == (0,)


def test_the_byte_cap_evicts_the_oldest_first() -> None:
    clock = Clock()
    conv = Conversations(None, ResponsesSettings(store_max_bytes=4096), clock=clock)
    for n in range(4):
        clock.now += 1
        answered(conv, {"input": str(n)}, f"resp_{n}", str(n) * 1500)  # ~1.6 KB a turn
    assert [_stored(conv, f"resp_{n}") for n in range(4)] == [False, False, True, True]


def test_an_item_a_later_turn_brought_again_outlives_the_first_turn_in_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store_mod, "MEMORY_TURNS", 3)
    conv = Conversations(None)  # no file: what memory lets go of is gone
    answered(conv, {"input": "zero"}, "resp_0", "first")
    again = {"id": "msg_resp_0", "type": "message", "role": "assistant", "content": "first"}
    answered(conv, {"input": [again, {"role": "user", "content": "one"}]}, "resp_1", "x")
    for n in range(2, 4):  # resp_0 leaves memory, resp_1 stays
        answered(conv, {"input": str(n)}, f"resp_{n}", "x")
    ref = conv.expand({"input": [{"type": "item_reference", "id": "msg_resp_0"}]})
    assert ref.body["input"] == [again]


def test_an_item_of_a_turn_memory_let_go_of_is_read_through_its_turn_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_mod, "MEMORY_TURNS", 2)
    path = tmp_path / "responses.sqlite3"
    conv = Conversations(path)
    try:
        twice = [
            {"id": "in_0", "type": "message", "role": "user", "content": "first"},
            {"id": "in_0", "type": "message", "role": "user", "content": "second"},
        ]
        answered(conv, {"input": twice}, "resp_0", "answer 0")
        for n in range(1, 4):  # resp_0 leaves memory
            answered(conv, {"input": str(n)}, f"resp_{n}", f"answer {n}")
        _wait_for_rows(path, 4)
        ref = conv.expand({"input": [{"type": "item_reference", "id": "in_0"}]})
        assert ref.body["input"] == [twice[1]]  # a turn holding an id twice: the last
        ref = conv.expand({"input": [{"type": "item_reference", "id": "msg_resp_0"}]})
        assert ref.body["input"][0]["content"][0]["text"] == "answer 0"
    finally:
        conv.close()


def test_a_turn_filed_again_under_its_id_keeps_only_its_new_items() -> None:
    conv = Conversations(None, ResponsesSettings(store_max_items=2))
    old = {"id": "in_old", "type": "message", "role": "user", "content": "old"}
    new = {"id": "in_new", "type": "message", "role": "user", "content": "new"}
    answered(conv, {"input": [old]}, "resp_0", "x")
    answered(conv, {"input": [new]}, "resp_0", "y")  # the same id again
    with pytest.raises(InvalidRequest):
        conv.expand({"input": [{"type": "item_reference", "id": "in_old"}]})
    assert conv.expand({"input": [{"type": "item_reference", "id": "in_new"}]}).body["input"] == [
        new
    ]
    for n in range(1, 3):  # resp_0 goes, with its items
        answered(conv, {"input": str(n)}, f"resp_{n}", "z")
    assert not _stored(conv, "resp_0")
    assert sorted(conv._item_index) == ["msg_resp_1", "msg_resp_2"]  # nothing of resp_0 left


def _wait_for_rows(path: Path, count: int) -> None:
    """Until the writer thread has committed `count` turns to the file (or 5 s passed)."""
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if path.exists():
            with contextlib.closing(sqlite3.connect(path)) as db:
                try:
                    if db.execute("SELECT count(*) FROM turns").fetchone()[0] >= count:
                        return
                except sqlite3.OperationalError:
                    pass
        time.sleep(0.02)
    raise AssertionError(f"the writer did not file {count} turns")


def test_one_process_deletes_expired_turns_from_the_file_as_it_files(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "responses.sqlite3"
    conv = Conversations(path, ResponsesSettings(store_ttl_seconds=60), clock=clock)
    try:
        answered(conv, {"input": "old"}, "resp_old", "x")
        answered(conv, {"input": "older", "previous_response_id": "resp_old"}, "resp_1", "y")
        clock.now += 61
        for n in range(2, PRUNE_EVERY + 2):  # the index is looked at every PRUNE_EVERY filings
            answered(conv, {"input": str(n)}, f"resp_{n}", "z")
        assert not _stored(conv, "resp_old")
        with pytest.raises(InvalidRequest):
            conv.expand({"input": [{"type": "item_reference", "id": "msg_resp_1"}]})
        kept = [f"resp_{n}" for n in range(2, PRUNE_EVERY + 2)]
        assert sorted(conv._item_index) == sorted(f"msg_{i}" for i in kept)
    finally:
        conv.close()  # what is queued is written: the file was opened once, nothing pruned then
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert {r[0] for r in db.execute("SELECT id FROM turns")} == set(kept)
        by_age = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'turns_created'")
        assert by_age.fetchone() is None  # memory finds the expired: no index by age


def test_a_turn_stays_in_memory_until_the_file_holds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More filings queued than memory holds (the writer held up by another writer's lock): the
    oldest of them still resolves, and memory is bounded again once the writer caught up."""
    monkeypatch.setattr(store_mod, "MEMORY_TURNS", 2)
    path = tmp_path / "responses.sqlite3"
    conv = Conversations(path)
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        answered(conv, {"input": "zero"}, "resp_0", "answer 0")
        _wait_for_rows(path, 1)  # the writer has the file open
        blocker.execute("BEGIN IMMEDIATE")  # and now waits for this lock
        answered(conv, {"input": "one"}, "resp_1", "answer 1")
        for n in range(2, 6):  # resp_1 is the oldest of five filings the file does not hold
            answered(conv, {"input": str(n)}, f"resp_{n}", f"answer {n}")
        assert _stored(conv, "resp_1")
        blocker.execute("COMMIT")
        _wait_for_rows(path, 6)
        answered(conv, {"input": "six"}, "resp_6", "answer 6")
        assert len(conv._turns) == 2  # the file holds the others
        assert _stored(conv, "resp_1")  # read from the file now
    finally:
        blocker.close()
        conv.close()
