"""The stored conversations' file layout: a file the previous layout wrote (version 1: each named
item's bytes again in an `items` row) opens with its turns and items kept, in one process and
with workers; item rows, with workers, go with their turn."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from driftgate.proxy.errors import InvalidRequest
from driftgate.proxy.responses.settings import ResponsesSettings
from driftgate.proxy.responses.sqlite_file import VERSION, open_db
from driftgate.proxy.responses.store import Conversations
from driftgate.proxy.responses.workers_store import WorkerConversations

# Version 1's schema, as its code made the file (sqlite_master of a file it wrote).
V1_SCHEMA = (
    "CREATE TABLE turns ( id TEXT PRIMARY KEY, previous TEXT, created REAL NOT NULL,"
    " items BLOB NOT NULL)",
    "CREATE INDEX turns_created ON turns (created)",
    "CREATE TABLE items (id TEXT PRIMARY KEY, created REAL NOT NULL, item BLOB NOT NULL)",
    "CREATE INDEX items_created ON items (created)",
    "CREATE TABLE totals ( one INTEGER PRIMARY KEY CHECK (one = 1), turns INTEGER NOT NULL,"
    " bytes INTEGER NOT NULL)",
)
V1_WORKERS = (
    "INSERT INTO totals SELECT 1, count(*), coalesce(sum(length(items)), 0) FROM turns",
    "CREATE TRIGGER turns_added AFTER INSERT ON turns BEGIN UPDATE totals SET"
    " turns = turns + 1, bytes = bytes + length(NEW.items); END",
    "CREATE TRIGGER turns_gone AFTER DELETE ON turns BEGIN UPDATE totals SET"
    " turns = turns - 1, bytes = bytes - length(OLD.items); END",
)
NOW = 1_000_000.0


def message(item_id: str, role: str, text: str) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "role": role, "content": text}


def v1_file(path: Path, *, workers: bool) -> None:
    """What version 1 wrote for: resp_1 (input in_1, output msg_1), resp_2 continuing it (an
    unnamed input, output msg_2, and in_1 sent again), and an item row left apart from its turn
    (resp_0 evicted, its item kept by age)."""
    turns = [
        ("resp_1", None, NOW + 1, [message("in_1", "user", "one"),
                                   message("msg_1", "assistant", "first")]),
        ("resp_2", "resp_1", NOW + 2, [{"type": "message", "role": "user", "content": "two"},
                                       message("msg_2", "assistant", "second"),
                                       message("in_1", "user", "one")]),
    ]  # fmt: skip
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        for statement in V1_SCHEMA:
            db.execute(statement)
        for response_id, previous, created, items in turns:
            db.execute(
                "INSERT INTO turns VALUES (?, ?, ?, ?)",
                (response_id, previous, created, orjson.dumps(items)),
            )
            for item in items:
                if "id" in item:
                    db.execute(
                        "INSERT OR REPLACE INTO items VALUES (?, ?, ?)",
                        (item["id"], created, orjson.dumps(item)),
                    )
        db.execute(
            "INSERT INTO items VALUES ('msg_0', ?, ?)",
            (NOW + 1, orjson.dumps(message("msg_0", "assistant", "zero"))),
        )
        if workers:
            for statement in V1_WORKERS:
                db.execute(statement)


def texts(items: list[dict[str, Any]]) -> list[str]:
    return [i["content"] for i in items]


def test_one_process_opens_a_version_1_file_with_its_turns_and_items(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    v1_file(path, workers=False)
    conv = Conversations(path, clock=lambda: NOW + 10)
    try:
        expanded = conv.expand({"input": "three", "previous_response_id": "resp_2"})
        assert texts(expanded.body["input"]) == ["one", "first", "two", "second", "one", "three"]
        refs = [{"type": "item_reference", "id": i} for i in ("in_1", "msg_1", "msg_2")]
        assert texts(conv.expand({"input": refs}).body["input"]) == ["one", "first", "second"]
        with pytest.raises(InvalidRequest, match="Item with id 'msg_0' not found"):
            conv.expand({"input": [{"type": "item_reference", "id": "msg_0"}]})  # no turn holds it
    finally:
        conv.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (VERSION,)
        assert db.execute("SELECT id, named FROM turns ORDER BY created").fetchall() == [
            ("resp_1", '["in_1","msg_1"]'),
            ("resp_2", '["msg_2","in_1"]'),
        ]
        assert db.execute("PRAGMA table_info(items)").fetchall()[1][1] == "turn"
        assert db.execute("SELECT count(*) FROM items").fetchone() == (0,)
        assert "items_created" not in {r[0] for r in db.execute("SELECT name FROM sqlite_master")}


def test_workers_open_a_version_1_file_and_map_its_items(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    v1_file(path, workers=True)

    async def body() -> None:
        a = WorkerConversations(path, clock=lambda: NOW + 10)
        b = WorkerConversations(path, clock=lambda: NOW + 10)
        try:
            refs = {"input": [{"type": "item_reference", "id": i} for i in ("in_1", "msg_1")]}
            assert texts(a.expand(refs, await a.load(refs)).body["input"]) == ["one", "first"]
            more = {"input": "three", "previous_response_id": "resp_2"}
            assert len(b.expand(more, await b.load(more)).body["input"]) == 6
        finally:
            a.close()
            b.close()

    asyncio.run(body())
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert dict(db.execute("SELECT id, turn FROM items").fetchall()) == {
            "in_1": "resp_2", "msg_1": "resp_1", "msg_2": "resp_2",
        }  # fmt: skip
        assert db.execute("SELECT turns FROM totals").fetchone() == (2,)


def test_a_version_1_file_is_migrated_once(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    v1_file(path, workers=False)
    open_db(path, shared=False).close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE turns SET named = '[]' WHERE id = 'resp_1'")
        db.commit()
    open_db(path).close()  # a version 2 file is not filled again
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT named FROM turns WHERE id = 'resp_1'").fetchone() == ("[]",)


def test_with_workers_an_items_row_goes_with_its_turn_unless_a_later_turn_brought_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "responses.sqlite3"
    clock = [NOW]

    async def answered(conv: WorkerConversations, rid: str, items: list[dict[str, Any]]) -> None:
        clock[0] += 1
        body = {"input": items}
        expanded = conv.expand(body, await conv.load(body))
        await conv.file(expanded, {"id": rid, "output": [message(f"msg_{rid}", "assistant", rid)]})

    async def body() -> None:
        settings = ResponsesSettings(store_max_items=2)
        a = WorkerConversations(path, settings, clock=lambda: clock[0])
        b = WorkerConversations(path, settings, clock=lambda: clock[0])
        try:
            kept = message("in_k", "user", "kept")
            await answered(a, "r1", [kept, message("in_1", "user", "one")])
            await answered(b, "r2", [kept])  # brought again: its row now names r2
            await answered(a, "r3", [message("in_3", "user", "three")])  # r1 goes
            for conv in (a, b):
                refs = {"input": [{"type": "item_reference", "id": "in_k"}]}
                assert texts(conv.expand(refs, await conv.load(refs)).body["input"]) == ["kept"]
                for gone in ("in_1", "msg_r1"):
                    refs = {"input": [{"type": "item_reference", "id": gone}]}
                    with pytest.raises(InvalidRequest, match="not found"):
                        conv.expand(refs, await conv.load(refs))
        finally:
            a.close()
            b.close()

    asyncio.run(body())
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert dict(db.execute("SELECT id, turn FROM items").fetchall()) == {
            "in_k": "r2", "msg_r2": "r2", "in_3": "r3", "msg_r3": "r3",
        }  # fmt: skip


def test_in_one_process_an_item_a_later_turn_brought_again_outlives_the_first_turn(
    tmp_path: Path,
) -> None:
    path = tmp_path / "responses.sqlite3"
    clock = [NOW]
    conv = Conversations(path, ResponsesSettings(store_max_items=2), clock=lambda: clock[0])

    def answered(conv: Conversations, rid: str, items: list[dict[str, Any]]) -> None:
        clock[0] += 1
        out = {"id": rid, "output": [message(f"msg_{rid}", "assistant", rid)]}
        conv.remember(conv.expand({"input": items}), out)

    def resolves(conv: Conversations, item_id: str) -> bool:
        try:
            conv.expand({"input": [{"type": "item_reference", "id": item_id}]})
        except InvalidRequest:
            return False
        return True

    kept = message("in_k", "user", "kept")
    answered(conv, "r1", [kept, message("in_1", "user", "one")])
    answered(conv, "r2", [kept])
    answered(conv, "r3", [message("in_3", "user", "three")])  # r1 goes, and what only it held
    assert [resolves(conv, i) for i in ("in_k", "in_1", "msg_r1", "msg_r2")] == [
        True, False, False, True,
    ]  # fmt: skip
    conv.close()
    again = Conversations(path, ResponsesSettings(store_max_items=2), clock=lambda: clock[0])
    try:  # from the file: memory holds none of these turns after a restart
        assert [resolves(again, i) for i in ("in_k", "in_1", "msg_r1", "msg_r3")] == [
            True, False, False, True,
        ]  # fmt: skip
        answered(again, "r4", [])  # r2 goes: in_k with it
        assert not resolves(again, "in_k")
    finally:
        again.close()
