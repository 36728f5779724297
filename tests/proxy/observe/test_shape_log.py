"""The shape log: deduplicated with counts, capped, written by its thread, on by default."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import openai

from driftgate.proxy.observe.shape_log import ShapeLog, connect, spread, write_shapes
from driftgate.proxy.observe.shape_settings import SHAPES_DB, ShapeSettings
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI


def _shape(i: int) -> dict[str, Any]:
    return {"client": {"family": "c", "version": str(i)}, "endpoint": "messages", "headers": [],
            "header_values": {}, "fields": {f"f{i}": ["string"]}, "values": {}}  # fmt: skip


def _rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT version, count, first_seen, last_seen FROM shapes").fetchall()


def test_equal_shapes_share_a_row_with_a_count(tmp_path: Path) -> None:
    db = connect(tmp_path / SHAPES_DB)
    write_shapes(db, [_shape(1), _shape(1), _shape(2)], now=10.0, max_shapes=100)
    write_shapes(db, [_shape(1)], now=20.0, max_shapes=100)
    db.close()
    assert sorted(_rows(tmp_path / SHAPES_DB)) == [("1", 3, 10.0, 20.0), ("2", 1, 10.0, 10.0)]


def test_the_cap_holds_and_the_least_recently_seen_go_first(tmp_path: Path) -> None:
    db = connect(tmp_path / SHAPES_DB)
    for i in range(50):
        write_shapes(db, [_shape(i), _shape(0)], now=float(i), max_shapes=10)
    db.close()
    rows = _rows(tmp_path / SHAPES_DB)
    assert len(rows) == 10
    versions = {r[0] for r in rows}
    assert "0" in versions  # seen in every batch: kept
    assert versions - {"0"} == {str(i) for i in range(41, 50)}


def test_requests_through_the_gateway_reach_the_log_without_content(
    gateway_factory: Callable[..., Any], fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> None:
    server = gateway_factory(
        backends=[fake_anthropic.backend(), fake_openai.backend(models=["gpt-*"])]
    )
    secret_text = "please keep this private 4242"
    claude = anthropic.Anthropic(
        base_url=server.url, api_key="sk-ant-api03-planted-key-0000000000", max_retries=0
    )
    for _ in range(3):
        claude.messages.create(
            model="claude-sonnet-4-6", max_tokens=16,
            messages=[{"role": "user", "content": [{"type": "text", "text": secret_text}]}],
            extra_headers={"anthropic-beta": "tools-2024-04-04"},
        )  # fmt: skip
    gpt = openai.OpenAI(
        base_url=server.url + "/v1", api_key="sk-proj-planted-key-00000000000", max_retries=0
    )
    gpt.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": secret_text}]
    )
    home = server.config.home
    server.stop()  # the writer flushes on close
    path = home / SHAPES_DB
    raw = path.read_bytes() + b"".join(p.read_bytes() for p in home.glob(SHAPES_DB + "-*"))
    assert b"4242" not in raw and b"planted-key" not in raw
    with sqlite3.connect(path) as db:
        rows = dict(db.execute("SELECT family, count FROM shapes").fetchall())
    assert rows == {"anthropic-python": 3, "openai-python": 1}


def test_off_writes_nothing(
    gateway_factory: Callable[..., Any], fake_anthropic: FakeAnthropic
) -> None:
    server = gateway_factory(
        backends=[fake_anthropic.backend()], shapes=ShapeSettings(enabled=False)
    )
    claude = anthropic.Anthropic(base_url=server.url, api_key="sk-x", max_retries=0)
    claude.messages.create(
        model="claude-sonnet-4-6", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
    )
    home = server.config.home
    server.stop()
    assert not (home / SHAPES_DB).exists()


def test_a_sample_stands_for_every_request(tmp_path: Path) -> None:
    items = [("messages", {}, str(i).encode()) for i in range(7)]
    taken = spread(items, 1000)  # type: ignore[arg-type]
    assert len(taken) == 7 and sum(w for _, w in taken) == 1000
    assert spread(items, 7) == [(item, 1) for item in items]  # type: ignore[arg-type]
    log = ShapeLog(tmp_path / SHAPES_DB, 100, clock=lambda: 5.0, sample_per_flush=4)
    for _ in range(50):  # more than a flush's sample: all counted, four kept
        log.offer("messages", {"user-agent": "curl/8.5.0"}, b'{"model": "m"}')
    db = connect(tmp_path / SHAPES_DB)
    log.flush(db)
    db.close()
    assert _rows(tmp_path / SHAPES_DB) == [("8.5.0", 50, 5.0, 5.0)]


def test_the_writer_sleeps_with_no_traffic_and_writes_soon_after_a_request(tmp_path: Path) -> None:
    """No requests: the thread does not wake every flush to find nothing (an idle gateway would
    wake twice a second for it); a request wakes it and its shape is written a flush later."""
    import threading
    import time

    class CountingLog(ShapeLog):
        def __init__(self) -> None:
            super().__init__(tmp_path / SHAPES_DB, 100, clock=lambda: 5.0, flush_seconds=0.02)
            self.flushes = 0
            self.wrote = threading.Event()

        def flush(self, db: sqlite3.Connection) -> None:
            self.flushes += 1
            super().flush(db)
            if _rows(self.path):
                self.wrote.set()

    log = CountingLog()
    log.start()
    try:
        time.sleep(0.3)  # fifteen flushes' time, idle
        assert log.flushes == 0
        log.offer("messages", {"user-agent": "curl/8.5.0"}, b'{"model": "m"}')
        assert log.wrote.wait(10)
        time.sleep(0.3)  # idle again: no more flushes than the one that wrote
        assert log.flushes == 1
    finally:
        log.close()
    assert log.flushes == 2  # and the last one at close
    assert _rows(tmp_path / SHAPES_DB) == [("8.5.0", 1, 5.0, 5.0)]
