"""Upstreams that misbehave: resets, stalls, 429/5xx, malformed and truncated streams, vanishing clients."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from driftgate.proxy.config import BackendConfig, Config
from driftgate.proxy.server import GatewayServer
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.scripted import Behaviour
from tests.fakes.server_thread import ServerThread, closed_port

SONNET = "claude-sonnet-4-6"
MSG = [{"role": "user", "content": "tell me a fairly long story in many words please"}]
ANT_BODY = {"model": SONNET, "max_tokens": 64, "messages": MSG}
ANT_STREAM = {**ANT_BODY, "stream": True}
OAI_STREAM = {"model": "gpt-4o", "messages": MSG, "stream": True}
Factory = Callable[..., Any]


def stream_bytes(url: str, body: dict[str, Any]) -> bytes:
    with httpx.stream("POST", url, json=body, timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        return b"".join(r.iter_raw())


def with_fallback(primary: FakeAnthropic, second: FakeAnthropic, **kw: Any) -> dict[str, Any]:
    return {
        "backends": [
            primary.backend("primary", **kw),
            second.backend("second", models=["never-*"]),
        ],
        "fallbacks": {SONNET: (f"second:{SONNET}",)},
    }


@pytest.fixture
def second_anthropic() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic().start()
    try:
        yield fake
    finally:
        fake.stop()


def test_connection_reset_without_fallback_is_502(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    fake_anthropic.script(Behaviour.reset())
    r = httpx.post(gw.url + "/v1/messages", json=ANT_BODY)
    assert r.status_code == 502
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "api_error"


def test_connection_reset_falls_back(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, second_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(**with_fallback(fake_anthropic, second_anthropic))
    fake_anthropic.script(Behaviour.reset())
    r = httpx.post(gw.url + "/v1/messages", json=ANT_STREAM)
    assert r.status_code == 200 and r.headers["x-driftgate-backend"] == "second"
    assert b"event: message_stop" in r.content


@pytest.mark.parametrize("body", [ANT_BODY, ANT_STREAM])
def test_stall_past_the_timeout_is_504(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, body: Any
) -> None:
    gw = gateway_factory(backends=[fake_anthropic.backend(timeout=0.5)])
    fake_anthropic.script(Behaviour.stall(30))
    r = httpx.post(gw.url + "/v1/messages", json=body, timeout=30)
    assert r.status_code == 504
    assert r.json()["error"]["type"] == "api_error"
    assert fake_anthropic.disconnected.wait(10)  # the gateway hung up on the stalled upstream


def test_stall_falls_back(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, second_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(**with_fallback(fake_anthropic, second_anthropic, timeout=0.5))
    fake_anthropic.script(Behaviour.stall(30))
    r = httpx.post(gw.url + "/v1/messages", json=ANT_BODY, timeout=30)
    assert r.status_code == 200 and r.headers["x-driftgate-backend"] == "second"


def test_429_then_fallback_keeps_streaming(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, second_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(**with_fallback(fake_anthropic, second_anthropic))
    fake_anthropic.script(Behaviour.status(429, headers={"retry-after": "30"}))
    out = stream_bytes(gw.url + "/v1/messages", ANT_STREAM)
    assert out.rstrip().endswith(b'data: {"type":"message_stop"}')
    assert len(second_anthropic.requests) == 1


def test_no_fallback_once_streaming_started(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, second_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(**with_fallback(fake_anthropic, second_anthropic))
    fake_anthropic.script(Behaviour.truncate(after_events=3))
    out = stream_bytes(gw.url + "/v1/messages", ANT_STREAM)
    assert b"event: message_start" in out
    assert out.rstrip().splitlines()[-2] == b"event: error"
    assert second_anthropic.requests == []


def test_truncated_stream_ends_with_an_error_event_anthropic(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    fake_anthropic.script(Behaviour.truncate(after_events=4))
    out = stream_bytes(gw.url + "/v1/messages", ANT_STREAM)
    assert b"message_stop" not in out
    tail = out.rstrip().splitlines()
    assert tail[-2] == b"event: error" and b'"type":"error"' in tail[-1]


def test_truncated_stream_ends_with_error_then_done_openai(
    gateway_factory: Factory, fake_openai: FakeOpenAI
) -> None:
    gw = gateway_factory(backends=[fake_openai])
    fake_openai.script(Behaviour.truncate(after_events=2))
    out = stream_bytes(gw.url + "/v1/chat/completions", OAI_STREAM)
    lines = [ln for ln in out.splitlines() if ln]
    assert lines[-1] == b"data: [DONE]"
    assert lines[-2].startswith(b'data: {"error"')
    assert out.count(b"[DONE]") == 1


def test_malformed_sse_line_is_not_relayed_and_ends_with_error(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    fake_anthropic.script(Behaviour.malformed_sse(after_events=3))
    out = stream_bytes(gw.url + "/v1/messages", ANT_STREAM)
    assert b"text_del\n" not in out  # the broken line itself never reaches the client
    assert b"event: message_start" in out
    tail = out.rstrip().splitlines()
    assert tail[-2] == b"event: error" and b"not JSON" in tail[-1]


def test_malformed_sse_across_dialects(gateway_factory: Factory, fake_openai: FakeOpenAI) -> None:
    gw = gateway_factory(backends=[fake_openai])
    fake_openai.script(Behaviour.malformed_sse(after_events=2))
    out = stream_bytes(gw.url + "/v1/messages", {**ANT_STREAM, "model": "gpt-4o"})
    assert b"event: error" in out
    assert out.count(b"event: error") == 1
    assert b"message_stop" not in out.split(b"event: error")[1]


def test_truncated_stream_across_dialects(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    fake_anthropic.script(Behaviour.truncate(after_events=4))
    out = stream_bytes(gw.url + "/v1/chat/completions", {**OAI_STREAM, "model": SONNET})
    lines = [ln for ln in out.splitlines() if ln]
    assert lines[-1] == b"data: [DONE]" and lines[-2].startswith(b'data: {"error"')


def test_client_disconnect_cancels_the_upstream(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    fake_anthropic.script(Behaviour.slow_stream(0.2))
    with httpx.stream("POST", gw.url + "/v1/messages", json=ANT_STREAM, timeout=30) as r:
        first = next(r.iter_raw())
        assert b"message_start" in first
    # the client hung up after its first chunk; the gateway must drop the upstream connection
    assert fake_anthropic.disconnected.wait(15)


def _stalling_upstream() -> web.Application:
    """Sends two Anthropic events, then goes silent (a read timeout mid-stream)."""

    async def messages(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(
            b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
            b'"role":"assistant","model":"claude-sonnet-4-6","content":[],"stop_reason":null,'
            b'"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}\n\n'
        )
        await resp.write(b'event: ping\ndata: {"type":"ping"}\n\n')
        await asyncio.sleep(30)
        return resp

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    return app


def test_read_timeout_mid_stream_ends_with_an_error_event(gateway_factory: Factory) -> None:
    with ServerThread(_stalling_upstream()) as upstream:
        backend = BackendConfig(
            name="slow", kind="anthropic", base_url=upstream.url, key="k", timeout=0.5
        )
        gw = gateway_factory(backends=[backend])
        out = stream_bytes(gw.url + "/v1/messages", ANT_STREAM)
    assert out.startswith(b"event: message_start")
    tail = out.rstrip().splitlines()
    assert tail[-2] == b"event: error" and b"timed out" in tail[-1]


class _ExplodingClient:
    """An upstream-client seam whose every request fails in a way nobody planned for."""

    def post(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom while holding sk-ant-very-secret-key-123456")

    async def close(self) -> None:
        return None


def test_unexpected_error_is_a_generic_500_and_the_log_is_redacted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = BackendConfig(
        name="a",
        kind="anthropic",
        base_url="http://127.0.0.1:9",
        key="sk-ant-very-secret-key-123456",
    )
    config = Config(home=tmp_path, path=tmp_path / "c.toml", port=0, backends=(backend,))
    caplog.set_level(logging.ERROR, logger="driftgate.app")
    with GatewayServer(config, transport_factory=lambda _: _ExplodingClient()) as gw:  # type: ignore[arg-type,return-value]
        r = httpx.post(gw.url + "/v1/chat/completions", json={"model": SONNET, "messages": MSG})
        again = httpx.get(gw.url + "/health")
    assert r.status_code == 500
    assert r.json()["error"]["type"] == "server_error"
    assert "boom" not in r.text and "Traceback" not in r.text
    assert again.status_code == 200  # still serving
    logged = caplog.text
    assert "boom" in logged and "RuntimeError" in logged
    assert "sk-ant-very-secret-key-123456" not in logged


def test_client_giving_up_on_a_non_streamed_request_cancels_the_upstream(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    fake_anthropic.script(Behaviour.stall(30))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(gw.url + "/v1/messages", json=ANT_BODY, timeout=httpx.Timeout(5, read=0.5))
    assert fake_anthropic.disconnected.wait(15)


def test_untranslatable_upstream_answer_is_a_502_in_the_clients_dialect(
    gateway_factory: Factory, fake_openai: FakeOpenAI
) -> None:
    gw = gateway_factory(backends=[fake_openai])
    fake_openai.script(Behaviour.status(200, body=b"<html>a proxy error page</html>"))
    r = httpx.post(gw.url + "/v1/messages", json={**ANT_BODY, "model": "gpt-4o"})
    assert r.status_code == 502
    assert r.json()["type"] == "error"
    assert r.json()["error"]["message"] == (
        "upstream returned a response that could not be translated: its body is not JSON"
    )
    fake_openai.script(Behaviour.status(200, body=b"[1, 2]"))  # JSON, not a response
    r = httpx.post(gw.url + "/v1/messages", json={**ANT_BODY, "model": "gpt-4o"})
    assert r.status_code == 502
    assert "could not be translated: " in r.json()["error"]["message"]
    assert "Error" not in r.json()["error"]["message"]  # no exception class names


def test_upstream_answering_a_stream_request_with_plain_json_is_relayed_whole(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    whole = b'{"type":"message","id":"msg_x","content":[]}'
    fake_anthropic.script(
        Behaviour.status(200, body=whole, headers={"content-type": "application/json"})
    )
    r = httpx.post(gw.url + "/v1/messages", json=ANT_STREAM)
    assert r.status_code == 200
    assert r.content == whole


def _recorded_rows(tmp_path: Path, backend: BackendConfig, act: Callable[[str], None]) -> list[Any]:
    """Run `act(gateway_url)` against a gateway with its own usage database; its rows after stop."""
    import sqlite3

    from driftgate.proxy.analytics import Recorder

    db = tmp_path / "usage.sqlite3"
    recorder = Recorder(db)
    config = Config(home=tmp_path, path=tmp_path / "c.toml", port=0, backends=(backend,))
    with GatewayServer(config, recorder=recorder, env={}) as gw:
        act(gw.url)
    recorder.close()
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return list(conn.execute("SELECT * FROM usage"))


def test_a_stream_the_client_abandons_is_recorded_as_499_with_partial_usage(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(Behaviour.slow_stream(0.2))

    def act(url: str) -> None:
        with httpx.stream("POST", url + "/v1/messages", json=ANT_STREAM, timeout=30) as r:
            assert b"message_start" in next(r.iter_raw())
        assert fake_anthropic.disconnected.wait(15)

    rows = _recorded_rows(tmp_path, fake_anthropic.backend(), act)
    assert [(r["status"], r["stream"], r["endpoint"]) for r in rows] == [(499, 1, "messages")]
    assert rows[0]["input_tokens"] > 0  # message_start's usage, seen before the hang-up


def test_a_request_abandoned_before_any_answer_is_recorded_as_499(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(Behaviour.stall(30))

    def act(url: str) -> None:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url + "/v1/messages", json=ANT_BODY, timeout=httpx.Timeout(5, read=0.5))
        assert fake_anthropic.disconnected.wait(15)

    rows = _recorded_rows(tmp_path, fake_anthropic.backend(), act)
    assert [(r["status"], r["stream"], r["backend"]) for r in rows] == [(499, 0, "anthropic")]
    assert rows[0]["output_tokens"] == 0


def test_a_request_no_backend_answered_is_recorded_as_502_without_cost(tmp_path: Path) -> None:
    dead = BackendConfig(
        name="dead", kind="anthropic", base_url=f"http://127.0.0.1:{closed_port()}", key="k"
    )

    def act(url: str) -> None:
        assert httpx.post(url + "/v1/messages", json=ANT_BODY).status_code == 502

    rows = _recorded_rows(tmp_path, dead, act)
    assert [(r["status"], r["backend"], r["endpoint"]) for r in rows] == [(502, "dead", "messages")]
    assert rows[0]["input_tokens"] == 0 and rows[0]["cost_usd"] in (0.0, None)
