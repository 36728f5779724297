"""Stored Responses conversations with `driftgate proxy --workers 2`: the official openai SDK holds
two-turn conversations through the real processes, each request on a new connection so the kernel
may hand it to either worker; every follow-up resolves, whichever worker filed its first turn.

A translated response's id starts with the answering process's own prefix (new_id), which tells
the test which worker answered each turn without asking the gateway.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.test_workers import BOUND, Gateway, config_text
from tests.fakes.anthropic_upstream import FakeAnthropic

MODEL = "claude-sonnet-4-6"
MOST_CONVERSATIONS = 120  # until each worker has continued a turn the other one filed


@pytest.fixture
def two_workers(tmp_path: Path, fake_anthropic: FakeAnthropic) -> Iterator[Gateway]:
    gw = Gateway(tmp_path / "home", config_text(fake_anthropic.url), 2)
    try:
        yield gw
    finally:
        gw.stop()


def worker_of(response_id: str) -> str:
    """The answering process's id prefix: resp_ + 16 hex digits of its own."""
    return response_id[5:21]


def fresh_client(url: str) -> openai.OpenAI:
    """The official SDK on a new connection for every request (no keep-alive)."""
    http = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=BOUND)
    return openai.OpenAI(base_url=url + "/v1", api_key="sk-client", max_retries=0, http_client=http)


def text_of(stream: Any) -> tuple[str, str]:
    """A streamed response's id and text, from its events."""
    rid, text = "", ""
    for event in stream:
        if event.type == "response.completed":
            rid, text = event.response.id, event.response.output_text
    return rid, text


def test_every_worker_continues_conversations_the_other_one_stored(
    two_workers: Gateway, fake_anthropic: FakeAnthropic
) -> None:
    client = fresh_client(two_workers.url)
    crossed: set[tuple[str, str]] = set()  # (filed by, continued by)
    workers: set[str] = set()
    n = 0
    while n < MOST_CONVERSATIONS and len(crossed) < 2:
        stream = n % 2 == 1  # half of them streamed: filed before the stream's last event
        first = client.responses.create(model=MODEL, input=f"hello {n}")
        if stream:
            rid, text = text_of(
                client.responses.create(
                    model=MODEL, previous_response_id=first.id, input=f"again {n}", stream=True
                )
            )
        else:
            second = client.responses.create(
                model=MODEL, previous_response_id=first.id, input=f"again {n}"
            )
            rid, text = second.id, second.output_text
        assert text == f"echo: again {n}"
        sent = fake_anthropic.last.json["messages"]  # the whole conversation reached upstream
        assert [m["role"] for m in sent] == ["user", "assistant", "user"]
        assert f"hello {n}" in str(sent[0]["content"]) and f"again {n}" in str(sent[2]["content"])
        workers |= {worker_of(first.id), worker_of(rid)}
        if worker_of(first.id) != worker_of(rid):
            crossed.add((worker_of(first.id), worker_of(rid)))
        n += 1
    assert len(workers) == 2, workers
    assert len(crossed) == 2, f"after {n} conversations, only {crossed} crossed workers"
    # Each turn was filed once, by the worker that answered it.
    two_workers.signal(15)
    assert two_workers.proc.wait(timeout=BOUND) == 0
    with sqlite3.connect(two_workers.home / "responses.sqlite3") as db:
        rows, total = db.execute("SELECT count(*), count(DISTINCT id) FROM turns").fetchone()
        assert rows == total == 2 * n
        assert db.execute("SELECT turns FROM totals").fetchone() == (rows,)
    assert "Traceback" not in "".join(two_workers.log.lines)


def test_an_unknown_id_is_the_real_apis_400_on_every_worker(two_workers: Gateway) -> None:
    client = fresh_client(two_workers.url)
    for _ in range(6):
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model=MODEL, previous_response_id="resp_nope", input="hi")
        assert info.value.code == "previous_response_not_found"
        assert info.value.body == {
            "message": "Previous response with id 'resp_nope' not found.",
            "type": "invalid_request_error",
            "param": "previous_response_id",
            "code": "previous_response_not_found",
        }
