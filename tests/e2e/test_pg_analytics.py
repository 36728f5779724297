"""Analytics in a real PostgreSQL (Debian's, started by tests/fakes/postgres_fixtures.py).

Two gateways share one database; the SDKs talk to them over loopback; the database is read back
with psycopg. PostgreSQL is stopped and started under a running gateway.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import openai
import psycopg
import pytest

from driftgate.proxy.errors import ConfigError
from driftgate.proxy.observe.settings import AnalyticsConfig
from driftgate.proxy.server import startup_line
from tests.e2e.test_observe import sample, scrape, wait_until
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.postgres_server import PASSWORD, PgCluster

SONNET = "claude-sonnet-4-6"
Factory = Callable[..., Any]


def _ask(gw: Any, session: str) -> None:
    client = anthropic.Anthropic(base_url=gw.url, api_key="sk-client-a", max_retries=0)
    client.messages.create(
        model=SONNET,
        max_tokens=10,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-claude-code-session-id": session},
    )


def _analytics(gw: Any, window: str = "10m") -> dict[str, Any]:
    r = httpx.get(gw.url + "/analytics", params={"window": window}, timeout=10)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_two_gateways_one_database_each_analytics_shows_both(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI, pg_url: str
) -> None:
    analytics = AnalyticsConfig(database_url=pg_url)
    backends = [fake_anthropic.backend(), fake_openai.backend(models=["gpt-*"])]
    one = gateway_factory(backends=backends, analytics=analytics)
    two = gateway_factory(backends=backends, analytics=analytics)
    for _ in range(3):
        _ask(one, "sess-one")
    _ask(two, "sess-two")
    oai = openai.OpenAI(base_url=two.url + "/v1", api_key="sk-client-o", max_retries=0)
    oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])

    both = wait_until(lambda: (d := _analytics(one))["total"]["requests"] == 5 and d)
    assert both, _analytics(one)
    seen_by_two = _analytics(two)
    for doc in (both, seen_by_two):
        assert doc["total"]["requests"] == 5
        models = {g["key"]: g["requests"] for g in doc["models"]}
        assert models == {SONNET: 4, "gpt-4o": 1}
        sessions = {g["key"]: g["requests"] for g in doc["sessions"]}
        assert sessions == {"sess-one": 3, "sess-two": 1}  # no session: not listed
        assert {g["key"] for g in doc["clients"]} == {"anthropic-python", "openai-python"}
        assert doc["total"]["cost_usd"] > 0
        assert doc["total"]["p50_latency_ms"] is not None
    # the raw rows landed too, by COPY, one per request, each from its own gateway's writer
    assert _rows(pg_url, "SELECT count(*) FROM driftgate_requests") == [(5,)]
    [(requests, sessions)] = _rows(
        pg_url, "SELECT sum(requests), count(DISTINCT session) FROM driftgate_minutes"
    )
    assert (requests, sessions) == (5, 3)  # "" stands for no session
    assert both["database"]["written"] + seen_by_two["database"]["written"] >= 5


def test_the_password_is_never_shown(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, pg_url: str, caplog: Any
) -> None:
    gw = gateway_factory(backends=[fake_anthropic], analytics=AnalyticsConfig(database_url=pg_url))
    _ask(gw, "s")
    health = httpx.get(gw.url + "/health").text
    line = startup_line(gw.config, gw.url, gw.app)
    metrics = httpx.get(gw.url + "/metrics").text
    analytics = httpx.get(gw.url + "/analytics").text
    for shown in (health, line, metrics, analytics, caplog.text):
        assert PASSWORD not in shown
    assert "postgresql://driftgate:***@127.0.0.1" in line
    assert '"url":"postgresql://driftgate:***@127.0.0.1' in health


def test_a_refused_password_stops_start_up_with_a_sentence(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, pg_url: str
) -> None:
    wrong = pg_url.replace(PASSWORD, "not-the-password")
    with pytest.raises(ConfigError) as err:
        gateway_factory(backends=[fake_anthropic], analytics=AnalyticsConfig(database_url=wrong))
    assert "refused" in str(err.value) and "password" in str(err.value)
    assert "not-the-password" not in str(err.value) and "***" in str(err.value)


def test_postgres_down_then_back_requests_never_wait(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, pg_cluster: PgCluster
) -> None:
    server = pg_cluster.server()  # its own server: this test stops it
    url = server.create_database("downtime")
    limit = 12
    gw = gateway_factory(
        backends=[fake_anthropic],
        analytics=AnalyticsConfig(database_url=url, database_buffer=limit),
    )

    def state() -> dict[str, Any]:
        families = scrape(gw.url)
        return {
            "up": sample(families, "driftgate_analytics_db_up"),
            "backlog": sample(families, "driftgate_analytics_db_queue_depth"),
            "written": sample(families, "driftgate_analytics_db_written_total"),
            "dropped": sample(families, "driftgate_analytics_db_dropped_total"),
        }

    for _ in range(3):
        _ask(gw, "before")
    assert wait_until(lambda: state()["written"] == 3)
    server.stop()

    slowest = 0.0
    for _ in range(limit + 8):  # more than the buffer holds
        started = time.monotonic()
        _ask(gw, "during")
        slowest = max(slowest, time.monotonic() - started)
    # Each answered at once: no request waits for the database (its connect timeout is 5 s).
    assert slowest < 2.5
    # The writer notices the database is gone at its next write (once a second): wait for both.
    during = wait_until(lambda: (s := state())["dropped"] >= 8 and s["up"] == 0 and s)
    assert during, state()
    assert during["up"] == 0 and during["backlog"] <= limit
    # /analytics says the database cannot be read, in the client's dialect, without waiting
    r = httpx.get(gw.url + "/analytics", timeout=10)
    assert r.status_code == 503 and "analytics database" in r.json()["error"]["message"]

    server.start()
    after = wait_until(lambda: (s := state())["backlog"] == 0 and s["up"] == 1 and s, timeout=20)
    assert after, state()
    written, dropped = int(after["written"]), int(after["dropped"])
    assert written + dropped == 3 + limit + 8
    assert written >= 3 + 1  # buffered records were written after recovery
    assert _rows(url, "SELECT count(*) FROM driftgate_requests") == [(written,)]
    assert _analytics(gw)["total"]["requests"] == written
    _ask(gw, "after")  # and it goes on writing
    assert wait_until(lambda: state()["written"] == written + 1)


def test_a_gateway_starts_while_postgres_is_down_and_writes_once_it_is_up(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, pg_cluster: PgCluster
) -> None:
    server = pg_cluster.server()
    url = server.create_database("late")
    server.stop()
    gw = gateway_factory(backends=[fake_anthropic], analytics=AnalyticsConfig(database_url=url))
    assert "(unreachable)" in startup_line(gw.config, gw.url, gw.app)
    _ask(gw, "early")
    server.start()
    assert wait_until(lambda: _analytics(gw)["total"]["requests"] == 1, timeout=20)


def test_config_file_database_url_loads_and_a_bad_one_is_refused_without_echo(
    tmp_path: Any,
) -> None:
    from driftgate.proxy.config import load_config

    good = tmp_path / "good.toml"
    good.write_text('[analytics]\ndatabase_url = "postgresql://u:p4ss@db.internal:5432/x"\n')
    config = load_config(path=good, env={})
    assert config.analytics.database_url == "postgresql://u:p4ss@db.internal:5432/x"
    bad = tmp_path / "bad.toml"
    bad.write_text('[analytics]\ndatabase_url = "mysql://u:s3cretpw@db/x"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path=bad, env={})
    assert "postgresql://" in str(err.value) and "s3cretpw" not in str(err.value)


def test_analytics_reads_on_after_postgres_restarts_between_two_reads(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, pg_cluster: PgCluster
) -> None:
    server = pg_cluster.server()
    url = server.create_database("restarted")
    gw = gateway_factory(backends=[fake_anthropic], analytics=AnalyticsConfig(database_url=url))
    assert _analytics(gw)["total"]["requests"] == 0  # the reader's connection is now open
    server.stop()
    server.start()
    assert _analytics(gw)["total"]["requests"] == 0  # not a 503: a new connection, at once


def test_requests_the_guard_refuses_are_in_postgresql_with_why(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, pg_url: str
) -> None:
    from driftgate.proxy.cli.analytics_db import PgReads
    from driftgate.proxy.guard.settings import GuardSettings

    gw = gateway_factory(
        backends=[fake_anthropic],
        analytics=AnalyticsConfig(database_url=pg_url),
        guard=GuardSettings(daily_usd=0.25),
    )
    _ask(gw, "s")  # forwarded
    client = anthropic.Anthropic(base_url=gw.url, api_key="sk-client-a", max_retries=0)
    for max_tokens in (20_000, 10):  # $0.30 reserved past $0.25: halts; then halted
        with pytest.raises(anthropic.APIStatusError) as caught:
            client.messages.create(
                model=SONNET, max_tokens=max_tokens, messages=[{"role": "user", "content": "hi"}]
            )
        assert caught.value.status_code == 503

    doc = wait_until(lambda: (d := _analytics(gw))["total"]["refused"] == 2 and d)
    assert doc, _analytics(gw)
    assert (doc["total"]["requests"], doc["total"]["errors"]) == (1, 0)
    [refusal] = doc["refusals"]
    assert (refusal["outcome"], refusal["backend"], refusal["requests"]) == (
        "guard_halted", "anthropic", 2,
    )  # fmt: skip
    assert refusal["reason"].startswith("the daily total budget of $0.25 is reached")
    rows = _rows(pg_url, "SELECT status, outcome, reason FROM driftgate_requests ORDER BY ts")
    assert [(s, o) for s, o, _ in rows] == [
        (200, None),
        (503, "guard_halted"),
        (503, "guard_halted"),
    ]
    assert rows[1][2] == rows[2][2] == refusal["reason"]
    assert _rows(pg_url, "SELECT sum(requests), sum(refused) FROM driftgate_minutes") == [(1, 2)]
    reads = PgReads(pg_url)  # what `driftgate usage` prints
    [usage] = reads.usage(None)
    assert (usage["requests"], usage["errors"], usage["refused"]) == (1, 0, 2)
    assert reads.refusals(None, time.time()) == doc["refusals"]


TIMEOUT = 5  # the hanging test's database_timeout_seconds


def test_postgres_that_hangs_instead_of_refusing_is_down_after_the_timeout_then_back(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, pg_cluster: PgCluster
) -> None:
    server = pg_cluster.server()  # its own server: this test freezes it
    url = server.create_database("hangs")
    limit = 12
    gw = gateway_factory(
        backends=[fake_anthropic],
        analytics=AnalyticsConfig(
            database_url=url, database_buffer=limit, database_timeout_seconds=TIMEOUT
        ),
    )

    def state() -> dict[str, Any]:
        families = scrape(gw.url)
        return {
            "up": sample(families, "driftgate_analytics_db_up"),
            "backlog": sample(families, "driftgate_analytics_db_queue_depth"),
            "written": sample(families, "driftgate_analytics_db_written_total"),
            "dropped": sample(families, "driftgate_analytics_db_dropped_total"),
        }

    for _ in range(3):
        _ask(gw, "before")
    assert wait_until(lambda: state()["written"] == 3)
    assert _analytics(gw)["total"]["requests"] == 3  # the reader's connection is open too
    pids = server.freeze()  # connections stay open, new ones are accepted: nothing answers
    try:
        slowest = 0.0
        for _ in range(limit + 8):  # more than the buffer holds
            started = time.monotonic()
            _ask(gw, "during")
            slowest = max(slowest, time.monotonic() - started)
        # No request waits for the database: one that did would take the whole timeout. (The
        # bound leaves a loaded machine room: a 2 s timeout and a 2.5 s bound failed once.)
        assert slowest < TIMEOUT - 1
        # The write under way is cut off after the timeout; later records wait, then are dropped.
        during = wait_until(lambda: (s := state())["dropped"] >= 8 and s["up"] == 0 and s, 30)
        assert during, state()
        assert during["backlog"] <= limit
        r = httpx.get(gw.url + "/analytics", timeout=30)  # answered after the timeout, not never
        assert (
            r.status_code == 503 and f"no answer within {TIMEOUT} s" in r.json()["error"]["message"]
        )
    finally:
        server.thaw(pids)
    after = wait_until(lambda: (s := state())["backlog"] == 0 and s["up"] == 1 and s, timeout=30)
    assert after, state()
    written, dropped = int(after["written"]), int(after["dropped"])
    assert written + dropped == 3 + limit + 8
    assert written >= 3 + 1  # what waited in the buffer was written once it answered
    assert _rows(url, "SELECT count(*) FROM driftgate_requests") == [(written,)]
    assert _analytics(gw)["total"]["requests"] == written
