"""RecordKeeper: finished requests become usage records and log lines on the recorder's thread."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import orjson
import pytest

from driftgate.proxy.config import BackendConfig
from driftgate.proxy.flow import Flow
from driftgate.proxy.observe.keeper import RecordKeeper
from driftgate.proxy.observe.log_output import LineFormatter, LogHandler, direct_handler
from driftgate.proxy.observe.recorder import Recorder
from driftgate.proxy.observe.records import RequestRecord
from driftgate.proxy.respond.outcome import StreamResult
from driftgate.proxy.routing import Route
from driftgate.proxy.serve.drain import SHUTDOWN_REASON, SHUTDOWN_STATUS
from driftgate.proxy.sse import Usage
from driftgate.proxy.templates import load_bundled

BUNDLED = load_bundled()
ROUTE = Route(
    BackendConfig("anthropic", "anthropic", "http://127.0.0.1:1"),
    "claude-sonnet-4-6",
    "claude-sonnet-4-6",
)
ANSWER = orjson.dumps(
    {"type": "message", "content": [], "usage": {"input_tokens": 10, "output_tokens": 4}}
)


def _flow() -> Flow:
    return Flow(
        endpoint="messages",
        client_dialect="anthropic",
        raw=b"{}",
        body={},
        model="claude-sonnet-4-6",
        stream=False,
        include_usage=False,
        headers={},
        query="",
        started=0.0,
        route=ROUTE,
        templates=BUNDLED,
        upstream="anthropic",
    )


class ThreadNotingRecorder(Recorder):
    """A real in-memory recorder that notes which thread built each batch of records."""

    def __init__(self) -> None:
        super().__init__(None)
        self.built_on: list[str] = []
        self.jobs = 0

    def submit(self, job: object, count: int = 1) -> None:
        self.jobs += 1

        def noted() -> list[RequestRecord]:
            self.built_on.append(threading.current_thread().name)
            return job()  # type: ignore[operator, no-any-return]

        super().submit(noted, count)


def test_the_loop_only_queues_and_one_flush_hands_over_one_batch() -> None:
    recorder = ThreadNotingRecorder()
    keeper = RecordKeeper(recorder, owned=True, clock=lambda: 0.5)
    for _ in range(3000):  # far past the old inline-flush threshold of 1024
        keeper.whole_done(_flow(), 200, ANSWER, 0.1)
    assert recorder.jobs == 0  # nothing was recorded inline, however many requests finished
    keeper.flush()
    assert recorder.jobs == 1
    rows = recorder.summary()
    assert rows[0]["requests"] == 3000 and rows[0]["input_tokens"] == 30000
    assert rows[0]["cost_usd"] == pytest.approx(3000 * (10 * 3 + 4 * 15) / 1e6)
    assert recorder.built_on == ["driftgate-usage"]  # records were built off the event loop
    keeper.close()


def test_log_lines_are_written_from_the_recorder_thread(caplog: pytest.LogCaptureFixture) -> None:
    keeper = RecordKeeper(Recorder(None), owned=True, clock=lambda: 0.25)
    keeper.whole_done(_flow(), 200, ANSWER, 0.1)
    with caplog.at_level(logging.INFO, logger="driftgate.requests"):
        keeper.close()
    (record,) = [r for r in caplog.records if r.name == "driftgate.requests"]
    assert (
        record.getMessage()
        == "messages claude-sonnet-4-6 -> anthropic (claude-sonnet-4-6) 200 250 ms"
    )
    assert record.threadName == "driftgate-usage"


def test_each_request_is_one_log_record_with_its_own_time_and_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    finished = iter([1_700_000_000.25, 1_700_000_001.5, 1_700_000_002.75])
    keeper = RecordKeeper(
        Recorder(None), owned=True, clock=lambda: 0.25, wall=lambda: next(finished)
    )
    keeper.whole_done(_flow(), 200, ANSWER, 0.1)
    keeper.whole_done(_flow(), 429, b"{}", 0.1)
    keeper.unanswered(_flow(), 502)
    with caplog.at_level(logging.INFO, logger="driftgate.requests"):
        keeper.close()  # one batch of three
    records = [r for r in caplog.records if r.name == "driftgate.requests"]
    assert [(r.created, r.levelname) for r in records] == [
        (1_700_000_000.25, "INFO"),
        (1_700_000_001.5, "INFO"),
        (1_700_000_002.75, "WARNING"),
    ]
    assert [int(r.msecs) for r in records] == [250, 500, 750]
    assert all("\n" not in r.getMessage() for r in records)
    assert records[2].getMessage().endswith(" 502 250 ms")


def test_with_the_gateways_own_log_handler_alone_lines_go_straight_to_it(tmp_path: Path) -> None:
    finished = iter([1_700_000_000.25, 1_700_000_002.75])
    keeper = RecordKeeper(
        Recorder(None), owned=True, clock=lambda: 0.25, wall=lambda: next(finished)
    )
    keeper.whole_done(_flow(), 200, ANSWER, 0.1)
    keeper.unanswered(_flow(), 502)
    request_log = logging.getLogger("driftgate.requests")
    was = request_log.handlers[:], request_log.propagate, request_log.level
    path = tmp_path / "gateway.log"
    with path.open("w") as stream:
        handler = LogHandler(stream)
        request_log.handlers[:], request_log.propagate = [handler], False
        request_log.setLevel(logging.INFO)
        try:
            assert direct_handler(request_log) is handler  # the path this test is about
            keeper.close()
        finally:
            request_log.handlers[:], request_log.propagate = was[0], was[1]
            request_log.setLevel(was[2])
    stamp = LineFormatter().formatTime
    lines = path.read_text().splitlines()
    assert lines == [
        f"{stamp(logging.makeLogRecord({'created': 1_700_000_000.25, 'msecs': 250.0}))} INFO "
        "driftgate.requests: messages claude-sonnet-4-6 -> anthropic (claude-sonnet-4-6) 200 250 ms",
        f"{stamp(logging.makeLogRecord({'created': 1_700_000_002.75, 'msecs': 750.0}))} WARNING "
        "driftgate.requests: messages claude-sonnet-4-6 -> anthropic (claude-sonnet-4-6) 502 250 ms",
    ]


def test_a_job_that_fails_does_not_stop_the_recorder() -> None:
    recorder = Recorder(None)

    def broken() -> list[RequestRecord]:
        raise RuntimeError("bug")

    recorder.submit(broken)
    keeper = RecordKeeper(recorder, owned=True, clock=lambda: 0.5)
    keeper.whole_done(_flow(), 200, ANSWER, 0.1)
    keeper.flush()
    assert recorder.summary()[0]["requests"] == 1
    keeper.close()


def test_usage_read_while_translating_is_recorded_without_reading_the_body_again() -> None:
    recorder = Recorder(None)
    keeper = RecordKeeper(recorder, owned=True, clock=lambda: 0.5)
    usage = Usage()
    usage.input_tokens, usage.output_tokens = 7, 3
    keeper.whole_done(_flow(), 200, b"not json", 0.1, usage)
    keeper.flush()
    row = recorder.summary()[0]
    assert (row["input_tokens"], row["output_tokens"]) == (7, 3)
    keeper.close()


def test_records_and_what_was_asked_carry_every_field_by_name() -> None:
    """Both are made from a tuple of their fields: a field missing or extra must show here."""
    from driftgate.proxy.observe.keeper import Finished, _records

    flow = _flow()
    recorder = Recorder(None)
    keeper = RecordKeeper(recorder, owned=True, clock=lambda: 1.5, wall=lambda: 1000.0)
    keeper.whole_done(flow, 200, ANSWER, 0.25, headers={"request-id": "req_1"})
    keeper.unanswered(flow, 502, "no upstream answered")
    keeper.estimated(flow, 42)
    keeper.stream_done(flow, StreamResult(Usage(), False, None, stopped=True), 0.5)
    for finished in keeper._pending:  # the answered path's inline tuple and _finished's alike
        assert type(finished) is Finished and len(finished) == len(Finished._fields)
        assert finished.ticket is None and finished.counting is False
        assert (finished.model, finished.endpoint) == (flow.model, flow.endpoint)
        assert finished.user_agent == flow.headers.get("user-agent")
        assert finished.latency == 1.5 - flow.started and finished.ts == 1000.0
    assert [f.status for f in keeper._pending] == [200, 502, 200, SHUTDOWN_STATUS]
    assert [f.reason for f in keeper._pending] == [
        None, "no upstream answered", None, SHUTDOWN_REASON,
    ]  # fmt: skip
    assert keeper._pending[0].raw == ANSWER and keeper._pending[0].ttfb == 0.25
    del keeper._pending[1:]
    (record,) = _records(keeper._pending)
    recorder.close()
    assert type(record) is RequestRecord and len(record) == len(RequestRecord._fields)
    assert record._asdict() == {
        **record._asdict(),
        "ts": 1000.0, "backend": "anthropic", "model": "claude-sonnet-4-6", "status": 200,
        "input_tokens": 10, "output_tokens": 4, "latency_ms": 1500.0, "ttfb_ms": 250.0,
        "request_id": "req_1", "model_requested": "claude-sonnet-4-6", "reason": None,
    }  # fmt: skip


def test_workers_flush_less_often_each_so_a_batch_stays_one_processs_size() -> None:
    from driftgate.proxy.observe.keeper import FLUSH_EVERY, FLUSH_EVERY_MAX, flush_every

    assert flush_every(1) == FLUSH_EVERY
    assert flush_every(2) == pytest.approx(2 * FLUSH_EVERY)
    assert flush_every(3) == pytest.approx(3 * FLUSH_EVERY)
    # Many workers: capped, the bound on what a worker killed outright loses from memory.
    assert flush_every(64) == FLUSH_EVERY_MAX
    assert FLUSH_EVERY < flush_every(2) <= FLUSH_EVERY_MAX


@pytest.mark.parametrize("workers", [1, 2])
def test_the_gateways_keeper_flushes_at_its_workers_cadence(tmp_path: Path, workers: int) -> None:
    from dataclasses import replace

    from driftgate.proxy.config import load_config
    from driftgate.proxy.cooldown import Cooldowns
    from driftgate.proxy.observe.keeper import flush_every
    from driftgate.proxy.observe.observer import Observer

    config = replace(load_config({"DRIFTGATE_HOME": str(tmp_path)}), workers=workers)
    observer = Observer(config, lambda: BUNDLED, Cooldowns(30.0), lambda: 0.0, Recorder(None))
    try:
        assert observer.keeper.every == flush_every(workers)
    finally:
        observer.close()


def test_run_hands_a_batch_over_once_every_interval_not_sooner() -> None:
    import asyncio

    recorder = ThreadNotingRecorder()
    keeper = RecordKeeper(recorder, owned=True, clock=lambda: 0.5, every=0.3)

    async def go() -> tuple[int, int]:
        task = asyncio.create_task(keeper.run())
        keeper.whole_done(_flow(), 200, ANSWER, 0.1)
        await asyncio.sleep(0.1)  # one process's FLUSH_EVERY twice over: not yet a batch
        before = recorder.jobs
        for _ in range(100):  # then within a few intervals, one batch
            await asyncio.sleep(0.05)
            if recorder.jobs:
                break
        task.cancel()
        return before, recorder.jobs

    before, after = asyncio.run(go())
    keeper.close()
    assert (before, after) == (0, 1)
    assert recorder.written == 1


def test_an_idle_keeper_sleeps_until_a_record_comes_then_batches_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing to record: the batcher does not wake every interval to find nothing (an idle
    gateway would wake 20 times a second); the first record wakes it, and its batch goes out one
    interval later with the records that came meanwhile."""
    import asyncio

    recorder = ThreadNotingRecorder()
    keeper = RecordKeeper(recorder, owned=True, clock=lambda: 0.5, every=0.02)
    sleeps: list[float] = []
    real_sleep = asyncio.sleep

    async def counted_sleep(delay: float) -> None:
        if asyncio.current_task() is batcher:
            sleeps.append(delay)
        await real_sleep(delay)

    async def go() -> tuple[int, int, int]:
        nonlocal batcher
        batcher = asyncio.create_task(keeper.run())
        await real_sleep(0.3)  # 15 intervals, idle
        idle = len(sleeps)
        keeper.whole_done(_flow(), 200, ANSWER, 0.1)
        keeper.whole_done(_flow(), 200, ANSWER, 0.1)
        for _ in range(200):
            await real_sleep(0.01)
            if recorder.jobs:
                break
        await real_sleep(0.3)  # idle again
        batcher.cancel()
        return idle, recorder.jobs, len(sleeps)

    batcher: asyncio.Task[None] | None = None
    monkeypatch.setattr(asyncio, "sleep", counted_sleep)
    idle, jobs, slept = asyncio.run(go())
    keeper.close()
    assert idle == 0
    assert jobs == 1 and recorder.written == 2  # both records, one batch
    assert slept == 1  # the one interval of that batch, then asleep again
