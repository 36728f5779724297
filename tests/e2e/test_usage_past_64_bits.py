"""An upstream answer whose usage counts go past 64 bits, through the gateway in each direction.

orjson writes integers up to 64 bits: a translated answer summing counts past that (the
Responses and Chat shapes add the cached tokens to the input) was once a 500, and a count past
SQLite's integer (2**63 - 1) stopped the recorder's thread for good. The client now gets its
answer with the numbers in full, and the record keeps what SQLite can hold.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
import orjson
import pytest

from driftgate.proxy.analytics import Recorder
from driftgate.proxy.config import Config
from driftgate.proxy.server import GatewayServer
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.scripted import Behaviour

U = 2**64 - 1  # the largest count orjson reads as an integer
MOST = 2**63 - 1  # the largest SQLite stores
SONNET = "claude-sonnet-4-6"
MSG = [{"role": "user", "content": "hi"}]
ANTHROPIC_ANSWER = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": SONNET,
    "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": U, "output_tokens": U, "cache_read_input_tokens": U},
}  # fmt: skip
CHAT_ANSWER = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": U, "completion_tokens": U, "total_tokens": U,
              "prompt_tokens_details": {"cached_tokens": 1}},
}  # fmt: skip
REQUESTS = {
    "messages": ("/v1/messages", {"max_tokens": 16, "messages": MSG}),
    "chat": ("/v1/chat/completions", {"messages": MSG}),
    "responses": ("/v1/responses", {"input": "hi"}),
}
# (upstream, client endpoint, the usage the client reads)
CASES = [
    ("anthropic", "chat",
     {"prompt_tokens": 2 * U, "completion_tokens": U, "total_tokens": 3 * U}),
    ("anthropic", "responses",
     {"input_tokens": 2 * U, "output_tokens": U, "total_tokens": 3 * U}),
    ("openai", "responses",
     {"input_tokens": U, "output_tokens": U, "total_tokens": 2 * U}),
    ("openai", "messages",
     {"input_tokens": U - 1, "output_tokens": U, "cache_read_input_tokens": 1}),
    ("anthropic", "messages",  # relayed as sent
     {"input_tokens": U, "output_tokens": U, "cache_read_input_tokens": U}),
]  # fmt: skip

_COUNTS = (
    "SELECT input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, rl_tokens_limit"
    " FROM usage"
)


@pytest.mark.parametrize(("upstream", "endpoint", "usage"), CASES)
def test_a_usage_past_64_bits_is_answered_in_full_and_recorded(
    tmp_path: Path,
    fake_anthropic: FakeAnthropic,
    fake_openai: FakeOpenAI,
    upstream: str,
    endpoint: str,
    usage: dict[str, int],
) -> None:
    fake, model, answer = (
        (fake_anthropic, SONNET, ANTHROPIC_ANSWER)
        if upstream == "anthropic"
        else (fake_openai, "gpt-4o", CHAT_ANSWER)
    )
    # A rate-limit header past 64 bits too: what the record keeps of it is no number at all.
    headers = {"content-type": "application/json", "x-ratelimit-limit-tokens": str(2**70)}
    fake.script(Behaviour.status(200, body=orjson.dumps(answer), headers=headers))
    recorder = Recorder(tmp_path / "usage.sqlite3")
    config = Config(
        home=tmp_path,
        path=tmp_path / "c.toml",
        port=0,
        backends=(fake_anthropic.backend(), fake_openai.backend(models=["gpt-*"])),
    )
    path, body = REQUESTS[endpoint]
    with GatewayServer(config, recorder=recorder, env={}) as gw:
        r = httpx.post(gw.url + path, json={"model": model, **body}, timeout=30)
        assert r.status_code == 200, r.text
        got = json.loads(r.content)["usage"]  # the standard library reads integers in full
        assert {k: got[k] for k in usage} == usage
    recorder.close()
    with sqlite3.connect(tmp_path / "usage.sqlite3") as conn:
        rows = conn.execute(_COUNTS).fetchall()
    assert len(rows) == 1  # recorded, and the recorder still running
    counts = rows[0]
    assert all(0 <= n <= MOST for n in counts[:4]) and counts[1] == MOST
    assert counts[4] is None  # the header's number, past what is stored


def test_reasoning_tokens_alone_past_64_bits_are_recorded_as_the_most_kept(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    """Only the reasoning count is too large (an upstream's own bug): the record is still written,
    with that count at the most SQLite keeps, and the other counts as sent."""
    answer = {
        **CHAT_ANSWER,
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12,
                  "completion_tokens_details": {"reasoning_tokens": U}},
    }  # fmt: skip
    fake_openai.script(Behaviour.status(200, body=orjson.dumps(answer)))
    recorder = Recorder(tmp_path / "usage.sqlite3")
    config = Config(
        home=tmp_path, path=tmp_path / "c.toml", port=0,
        backends=(fake_openai.backend(models=["gpt-*"]),),
    )  # fmt: skip
    path, body = REQUESTS["chat"]
    with GatewayServer(config, recorder=recorder, env={}) as gw:
        r = httpx.post(gw.url + path, json={"model": "gpt-4o", **body}, timeout=30)
        assert r.status_code == 200, r.text
    recorder.close()
    with sqlite3.connect(tmp_path / "usage.sqlite3") as conn:
        rows = conn.execute(
            "SELECT input_tokens, output_tokens, reasoning_tokens FROM usage"
        ).fetchall()
    assert rows == [(5, 7, MOST)]
