"""log_format = "json": one JSON object per line, one per request, credentials masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import orjson
import pytest

from driftgate.proxy.config import BackendConfig
from driftgate.proxy.flow import Flow
from driftgate.proxy.observe.json_logs import JsonFormatter
from driftgate.proxy.observe.keeper import RecordKeeper
from driftgate.proxy.observe.recorder import Recorder
from driftgate.proxy.redact import RedactingFilter, Redactor
from driftgate.proxy.routing import Route
from driftgate.proxy.templates import load_bundled

SECRET = "sk-ant-api03-very-secret-value"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter(Redactor([SECRET])))
    root = logging.getLogger("driftgate")
    root.addHandler(handler)
    old = root.level
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def test_a_batch_of_requests_is_one_object_per_request(lines: io.StringIO) -> None:
    route = Route(
        BackendConfig("anthropic", "anthropic", "http://127.0.0.1:1"), "claude-sonnet-4-6", "sonnet"
    )
    flow = Flow("messages", "anthropic", b"{}", {}, "sonnet", False, False,
                {"x-claude-code-session-id": "sess-j"}, "", 0.0, "sess-j", route=route,
                templates=load_bundled(), upstream="anthropic")  # fmt: skip
    answer = orjson.dumps({"type": "message", "usage": {"input_tokens": 3, "output_tokens": 2}})
    keeper = RecordKeeper(Recorder(None), owned=True, clock=lambda: 0.5, log_json=True)
    for _ in range(2):
        keeper.whole_done(flow, 200, answer, 0.1)
    keeper.close()
    objects = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert len(objects) == 2
    first = objects[0]
    assert first["event"] == "request" and first["logger"] == "driftgate.requests"
    assert first["level"] == "info" and first["ts"].endswith("+00:00")
    assert first["model_requested"] == "sonnet" and first["model"] == "claude-sonnet-4-6"
    assert first["status"] == 200 and first["input_tokens"] == 3 and first["session"] == "sess-j"
    assert first["latency_ms"] == 500.0


def test_messages_and_tracebacks_are_single_lines_with_credentials_masked(
    lines: io.StringIO,
) -> None:
    log = logging.getLogger("driftgate.app")
    log.warning("upstream said: invalid key %s", SECRET)
    try:
        raise RuntimeError(f"boom with authorization: Bearer {SECRET}")
    except RuntimeError:
        log.exception("unexpected error")
    objects = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert [o["level"] for o in objects] == ["warning", "error"]
    assert objects[0]["message"].startswith("upstream said: invalid key sk-a")
    assert "RuntimeError" in objects[1]["exception"]
    assert SECRET not in lines.getvalue()
