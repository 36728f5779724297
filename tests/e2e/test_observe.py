"""Observability end to end: SDK requests through the gateway become records, metrics and events."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from driftgate.proxy.config import Config, MetricsConfig
from driftgate.proxy.observe.pricing import cost_usd
from driftgate.proxy.observe.recorder import Recorder
from driftgate.proxy.observe.records import RequestRecord
from driftgate.proxy.server import GatewayServer
from driftgate.proxy.templates import load_bundled
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.behaviour import Behaviour
from tests.fakes.openai_upstream import FakeOpenAI

SONNET = "claude-sonnet-4-6"
Factory = Callable[..., Any]


def _records(recorder: Recorder) -> list[RequestRecord]:
    rows = recorder.query(lambda c: c.execute("SELECT * FROM usage ORDER BY id").fetchall(), [])
    return [RequestRecord(*row[1:]) for row in rows]


def wait_until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll `check` until it returns something truthy (records are written in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def scrape(url: str) -> dict[str, Any]:
    """GET /metrics parsed with prometheus_client's parser: {family name: family}."""
    r = httpx.get(url + "/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def sample(families: dict[str, Any], name: str, **labels: str) -> float:
    """The value of the sample `name` whose labels include `labels` (0.0 when absent)."""
    for fam in families.values():
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


@pytest.fixture
def recorded(
    tmp_path: Path, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> Iterator[tuple[GatewayServer, Recorder]]:
    recorder = Recorder(tmp_path / "usage.sqlite3")
    config = Config(
        home=tmp_path,
        path=tmp_path / "c.toml",
        port=0,
        backends=(fake_anthropic.backend(), fake_openai.backend(models=["gpt-*"])),
    )
    with GatewayServer(config, recorder=recorder, env={}) as gw:
        yield gw, recorder
    recorder.close()


def test_a_record_per_request_with_client_session_limits_and_cost(
    recorded: tuple[GatewayServer, Recorder],
) -> None:
    gw, recorder = recorded
    ant = anthropic.Anthropic(base_url=gw.url, api_key="sk-client-a", max_retries=0)
    ant.messages.create(
        model="sonnet",  # an alias: requested and resolved differ
        max_tokens=20,
        messages=[{"role": "user", "content": "one two three"}],
        extra_headers={
            "x-claude-code-session-id": "sess-42",
            "user-agent": "claude-cli/2.0.14 (external, cli)",
        },
    )
    oai = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-client-o", max_retries=0)
    stream = oai.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hi there"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    for _ in stream:
        pass
    [first, second] = wait_until(lambda: len(r := _records(recorder)) == 2 and r)

    assert first.client == "claude-cli" and first.client_version == "2.0.14"
    assert first.session == "sess-42"
    assert first.model_requested == "sonnet" and first.model == SONNET
    assert first.backend == "anthropic" and first.endpoint == "messages" and first.status == 200
    assert first.input_tokens > 0 and first.output_tokens > 0
    counts = (first.input_tokens, first.output_tokens, first.cache_read_tokens)
    expected = cost_usd(SONNET, "anthropic", *counts, first.cache_write_tokens, load_bundled())
    assert expected and first.cost_usd == pytest.approx(expected)
    assert first.request_id.startswith("req_fake")  # the upstream's own id
    # the fakes send the real APIs' rate-limit headers (tests/fakes/upstream_world.py)
    assert (first.rl_requests_limit, first.rl_requests_remaining) == (50, 49)
    assert (first.rl_tokens_limit, first.rl_tokens_remaining) == (40000, 39990)
    assert first.rl_reset_s is not None and first.rl_reset_s > 0
    assert first.ratelimit is not None and "anthropic-ratelimit-tokens-limit" in first.ratelimit
    assert first.ttfb_ms is not None and first.latency_ms >= first.ttfb_ms

    assert second.client == "openai-python" and second.client_version == openai.__version__
    assert second.stream and second.model_requested == "gpt-4o" and second.backend == "openai"
    assert second.session is None
    assert (second.rl_requests_limit, second.rl_tokens_remaining) == (500, 29990)
    assert second.rl_reset_s == pytest.approx(0.12)  # "120ms", the soonest of the two resets
    assert second.output_tokens > 0


def test_metrics_count_requests_tokens_cost_and_latency(
    recorded: tuple[GatewayServer, Recorder], fake_anthropic: FakeAnthropic
) -> None:
    gw, _ = recorded
    ant = anthropic.Anthropic(base_url=gw.url, api_key="sk-client-a", max_retries=0)
    for _ in range(3):
        ant.messages.create(
            model=SONNET, max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    fake_anthropic.script(Behaviour.status(529))
    with pytest.raises(anthropic.APIStatusError):
        ant.messages.create(
            model=SONNET, max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )

    def counted() -> dict[str, Any] | None:
        fams = scrape(gw.url)
        done = sample(fams, "driftgate_requests_total", model=SONNET, status="529") == 1
        return fams if done else None

    fams = wait_until(counted)
    assert fams is not None
    ok = {"model": SONNET, "backend": "anthropic"}
    assert sample(fams, "driftgate_requests_total", status="200", **ok) == 3
    assert sample(fams, "driftgate_tokens_total", kind="output", **ok) > 0
    assert sample(fams, "driftgate_cost_usd_total", **ok) > 0
    assert sample(fams, "driftgate_request_duration_seconds_count", **ok) == 4
    assert sample(fams, "driftgate_request_duration_seconds_bucket", le="+Inf", **ok) == 4
    assert sample(fams, "driftgate_time_to_first_byte_seconds_count", **ok) == 4
    assert sample(fams, "driftgate_upstream_errors_total", backend="anthropic", kind="server") == 1
    assert sample(fams, "driftgate_cooldowns_total", backend="anthropic") == 1
    assert sample(fams, "driftgate_recorder_dropped_total") == 0
    assert "driftgate_recorder_queue_depth" in fams
    assert sample(fams, "driftgate_build_info", version="0.1.0") == 1


def test_metric_labels_only_carry_routed_model_names(
    recorded: tuple[GatewayServer, Recorder], fake_openai: FakeOpenAI
) -> None:
    gw, _ = recorded
    oai = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-client-o", max_retries=0)
    # Claimed by the "gpt-*" glob, but no template or config names it: labelled "other".
    fake_openai.models = (*fake_openai.models, "gpt-made-up-by-a-client-1234")
    oai.chat.completions.create(
        model="gpt-made-up-by-a-client-1234", messages=[{"role": "user", "content": "x"}]
    )
    oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    fams = wait_until(
        lambda: (
            (f := scrape(gw.url))
            and sample(f, "driftgate_requests_total", model="other") == 1
            # both requests' records (they may come in two of the keeper's batches)
            and sample(f, "driftgate_requests_total", model="gpt-4o", status="200") == 1
            and f
        )
    )
    assert fams
    models = {s.labels["model"] for s in fams["driftgate_requests"].samples if "model" in s.labels}
    assert models == {"other", "gpt-4o"}
    text = httpx.get(gw.url + "/metrics").text
    assert "gpt-made-up" not in text and "req_fake" not in text


def test_every_gateway_has_its_own_registry_and_metrics_can_be_off(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    one = gateway_factory(backends=[fake_anthropic])
    two = gateway_factory(backends=[fake_anthropic])
    off = gateway_factory(backends=[fake_anthropic], metrics=MetricsConfig(enabled=False))
    ant = anthropic.Anthropic(base_url=one.url, api_key="sk-client-a", max_retries=0)
    ant.messages.create(model=SONNET, max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert wait_until(lambda: sample(scrape(one.url), "driftgate_requests_total") == 1)
    assert sample(scrape(two.url), "driftgate_requests_total") == 0
    r = httpx.get(off.url + "/metrics")
    assert r.status_code == 404 and "[metrics] enabled = false" in r.text


def test_metrics_and_analytics_need_the_gateway_key_when_one_is_set(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic], api_key="gw-secret-key")
    assert httpx.get(gw.url + "/metrics").status_code == 401
    assert httpx.get(gw.url + "/analytics/stream").status_code == 401
    ok = httpx.get(gw.url + "/metrics", headers={"authorization": "Bearer gw-secret-key"})
    assert ok.status_code == 200


def _follow(url: str, events: queue.Queue[tuple[str, str]], ready: threading.Event) -> None:
    with httpx.stream("GET", url + "/analytics/stream", timeout=30) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in r.iter_lines():
            if line.startswith(": driftgate"):
                ready.set()
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.put((event, line[6:]))
                if event == "record":
                    return


def test_the_live_stream_sends_each_record_without_content(
    recorded: tuple[GatewayServer, Recorder],
) -> None:
    import json

    gw, _ = recorded
    events: queue.Queue[tuple[str, str]] = queue.Queue()
    ready = threading.Event()
    follower = threading.Thread(target=_follow, args=(gw.url, events, ready), daemon=True)
    follower.start()
    assert ready.wait(10)
    ant = anthropic.Anthropic(base_url=gw.url, api_key="sk-client-a", max_retries=0)
    ant.messages.create(
        model=SONNET,
        max_tokens=10,
        messages=[{"role": "user", "content": "a secret prompt word"}],
        extra_headers={"x-claude-code-session-id": "sess-live"},
    )
    event, data = events.get(timeout=10)
    follower.join(10)
    assert event == "record"
    doc = json.loads(data)
    assert doc["session"] == "sess-live" and doc["model"] == SONNET and doc["status"] == 200
    assert doc["client"] == "anthropic-python" and doc["stream"] is False
    assert "secret prompt" not in data and "sk-client-a" not in data


def test_analytics_summarises_a_window_per_model_backend_client_and_session(
    recorded: tuple[GatewayServer, Recorder],
) -> None:
    gw, _ = recorded
    ant = anthropic.Anthropic(base_url=gw.url, api_key="sk-client-a", max_retries=0)
    for session in ("sess-a", "sess-a", "sess-b"):
        ant.messages.create(
            model=SONNET,
            max_tokens=10,
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-claude-code-session-id": session},
        )

    def summary() -> dict[str, Any] | None:
        doc: dict[str, Any] = httpx.get(gw.url + "/analytics?window=60m").json()
        return doc if doc["total"]["requests"] == 3 else None

    doc = wait_until(summary)
    assert doc is not None
    assert doc["window_seconds"] == pytest.approx(3600.0)
    total = doc["total"]
    assert total["errors"] == 0 and total["cost_usd"] > 0 and total["cost_per_hour"] > 0
    assert total["p50_latency_ms"] is not None and total["p95_ttfb_ms"] is not None
    assert [m["key"] for m in doc["models"]] == [SONNET]
    assert [b["key"] for b in doc["backends"]] == ["anthropic"]
    assert [c["key"] for c in doc["clients"]] == ["anthropic-python"]
    assert {s["key"]: s["requests"] for s in doc["sessions"]} == {"sess-a": 2, "sess-b": 1}
    assert doc["recorder"] == {"backlog": 0, "dropped": 0}
    bad = httpx.get(gw.url + "/analytics?window=forever")
    assert bad.status_code == 400 and "60m" in bad.json()["error"]["message"]


def test_a_live_stream_does_not_hold_up_a_shutdown(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic], shutdown_grace=60.0)
    ended = threading.Event()
    ready = threading.Event()

    def follow() -> None:
        try:
            with httpx.stream("GET", gw.url + "/analytics/stream", timeout=120) as r:
                for line in r.iter_lines():
                    if line.startswith(": driftgate"):
                        ready.set()
        except httpx.HTTPError:
            pass
        ended.set()

    threading.Thread(target=follow, daemon=True).start()
    assert ready.wait(10)
    started = time.monotonic()
    gw.stop()
    assert time.monotonic() - started < 30  # the stream is not a request in flight (grace 60 s)
    assert ended.wait(10)


def test_a_key_sent_as_the_model_is_forwarded_as_sent_and_recorded_masked(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    """A client that pastes its key where the model goes: the upstream gets what was sent (and
    answers as it will), but the record (`driftgate usage`, /metrics, exports) keeps no key."""
    key_shaped = "sk-proj-Zq8mX2vN4bR7tY1uK9wE3sL6"
    recorder = Recorder(tmp_path / "usage.sqlite3")
    config = Config(home=tmp_path, path=tmp_path / "c.toml", port=0,
                    backends=(fake_openai.backend(models=["sk-*"]),))  # fmt: skip
    with GatewayServer(config, recorder=recorder, env={}) as gw:
        oai = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-client-o", max_retries=0)
        reply = oai.chat.completions.create(
            model=key_shaped, messages=[{"role": "user", "content": "hi"}]
        )
        [record] = wait_until(lambda: len(r := _records(recorder)) == 1 and r)
    recorder.close()
    assert reply.model == key_shaped  # the fake answers with the model it was sent
    assert record.model_requested == record.model == "sk-p…L6"
    assert key_shaped not in (tmp_path / "usage.sqlite3").read_bytes().decode("latin-1")
