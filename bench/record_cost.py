"""In-process cost of what the gateway does for a request after its answer, part by part.

With the benchmark's own config (analytics in SQLite, /metrics, the shape log, the request log
at INFO into a file), it does what the gateway does once a translate-stream answer has been
sent, on one thread and in the gateway's own order: the loop's part (the record keeper's
`stream_done`, the shape log's `offer`), then, per batch, what the recorder's thread does
(records and log lines, the SQLite insert, the sinks: /metrics and the live stream) and what the
shape log's thread does (its sampled shapes, upserted). Log lines pass the gateway's redaction. No HTTP, no translation: what is left is
the part of a request's CPU that proxy/observe/ owns. With `--guard`, the spend guard's part
too (proxy/guard/): the reservation the app makes before forwarding and, on the recorder's
thread, the batch's settlement.

    .venv/bin/python bench/record_cost.py                 # µs per request, each part
    .venv/bin/python bench/record_cost.py --profile       # cProfile of the whole
    .venv/bin/python bench/record_cost.py --guard         # with the spend guard on (its own part)

On a busy machine the µs move with the load; instructions do not. Counted with valgrind (the
difference between two counts, so start-up drops out):

    valgrind --tool=cachegrind --cache-sim=no .venv/bin/python bench/record_cost.py \\
        --count 0        # then --count 7000; (I2 - I1) / 7000
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import pstats
import sqlite3
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson
from targets import DRIFTGATE_CONFIG, GUARD_ON

from driftgate.proxy.app import _spend_guard
from driftgate.proxy.config import config_from_table, parse_toml
from driftgate.proxy.cooldown import Cooldowns
from driftgate.proxy.flow import Flow
from driftgate.proxy.observe import keeper as keeper_module
from driftgate.proxy.observe.log_output import WORKER_FORMAT, LogHandler
from driftgate.proxy.observe.observer import Observer
from driftgate.proxy.observe.shape_log import ShapeLog, connect
from driftgate.proxy.redact import RedactingFilter, Redactor
from driftgate.proxy.respond.outcome import StreamResult
from driftgate.proxy.routing import Route
from driftgate.proxy.sse import Usage
from driftgate.proxy.templates import load_bundled

BODY = (Path(__file__).resolve().parent / "wrk" / "bodies" / "translate_stream.json").read_bytes()
# What wrk sends (translate_stream.lua) and what the fast upstream answers a stream with.
CLIENT_HEADERS = {
    "host": "127.0.0.1:3456",
    "content-type": "application/json",
    "x-api-key": "sk-bench-client-key",
    "anthropic-version": "2023-06-01",
    "content-length": str(len(BODY)),
}
UPSTREAM_HEADERS = {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    "transfer-encoding": "chunked",
}
BATCH = 70  # requests per record batch: 50 ms (keeper.FLUSH_EVERY) at ~1,400 req/s
SHAPE_EVERY = 700  # requests per shape flush: 0.5 s at ~1,400 req/s
PARTS = ("loop", "guard", "records", "insert", "sinks", "shapes")


class Parts:
    """The gateway's post-answer machinery, built from the benchmark's config."""

    def __init__(self, home: Path, guard: bool = False) -> None:
        text = DRIFTGATE_CONFIG.format(port=3456, upstream="http://127.0.0.1:1")
        if guard:
            text += GUARD_ON
        path = home / "bench.toml"
        config = config_from_table(parse_toml(path, text), path, {"DRIFTGATE_HOME": str(home)})
        templates = load_bundled()
        self.config = config
        self.observer = Observer(config, lambda: templates, Cooldowns(30.0), time.monotonic)
        self.keeper = self.observer.keeper
        self.recorder = self.observer.recorder
        self.shapes = ShapeLog(config.shapes.file(home), config.shapes.max_shapes)
        self.shape_db: sqlite3.Connection = connect(self.shapes.path)
        backend = next(b for b in config.backends if b.name == "fake-openai")
        self.route = Route(backend, "gpt-4o-mini", "gpt-4o-mini")
        self.templates = templates
        self.guard = _spend_guard(config, time.time, self.observer, None)
        self.guard_spent = 0.0  # CPU seconds the guard's settlements took on the recorder's thread
        if self.guard.enabled:
            settle = self.guard.settle_many

            def timed(settled: list[tuple[Any, float | None]]) -> None:
                t0 = time.process_time()
                settle(settled)
                self.guard_spent += time.process_time() - t0

            self.keeper.settle = timed
        usage = Usage()
        usage.input_tokens, usage.output_tokens = 12, 9
        self.result = StreamResult(usage, False, None)

    def flow(self) -> Flow:
        """One translate-stream request as intake and forward leave it."""
        return Flow(
            "messages", "anthropic", BODY, {}, "gpt-4o-mini", True, False, CLIENT_HEADERS, "",
            time.monotonic(), route=self.route, templates=self.templates, upstream="openai",
            translated=True, streamed=True,
        )  # fmt: skip

    def admit(self, flow: Flow, body: dict[str, Any]) -> None:
        """The guard's reservation, as the app makes it before forwarding (none when it is off)."""
        if not self.guard.enabled:
            return
        route = self.route
        admit = self.guard.admit(
            len(flow.raw), body, route.backend.name, route.model, "openai",
            self.templates,
        )  # fmt: skip
        try:
            admit.send(None)  # the embedded store answers at once: the coroutine never waits
        except StopIteration as done:
            flow.ticket = done.value
        else:
            raise RuntimeError("the embedded guard store waited")

    def close(self) -> None:
        """Stop the recorder's thread and close the files."""
        self.shape_db.close()
        self.observer.close()
        _sync(self.guard.store.close())


def _sync(coro: Coroutine[Any, Any, None]) -> None:
    try:
        coro.send(None)
    except StopIteration:
        return
    raise RuntimeError("expected a coroutine that never waits")


def run(
    parts: Parts, count: int, spent: dict[str, float], skip: frozenset[str] = frozenset()
) -> None:
    """`count` requests through every part but `skip`, each part's CPU seconds added to `spent`."""
    keeper, recorder, shapes = parts.keeper, parts.recorder, parts.shapes
    clock = time.process_time
    done = 0
    while done < count:
        n = min(BATCH, count - done)
        flows = [parts.flow() for _ in range(n)]
        if parts.guard.enabled:  # intake parsed the bodies already
            bodies = [orjson.loads(flow.raw) for flow in flows]
        tg = clock()
        if parts.guard.enabled:  # the loop's part before forwarding
            for flow, body in zip(flows, bodies, strict=True):
                parts.admit(flow, body)
        t0 = clock()
        for flow in flows:  # the loop's part: after each answer
            if "shapes" not in skip:
                shapes.offer(flow.endpoint, flow.headers, flow.raw)
            keeper.stream_done(flow, parts.result, 0.002, UPSTREAM_HEADERS)
        batch, keeper._pending = keeper._pending, []  # what keeper.flush hands over
        t1 = clock()
        rows = keeper_module._records(batch, False, keeper.settle)  # the recorder's thread
        t2 = clock()
        if "insert" not in skip:
            recorder._write(rows)
        t3 = clock()
        if "sinks" not in skip:
            recorder._feed(rows)
        t4 = clock()
        done += n
        if "shapes" not in skip and (done % SHAPE_EVERY < n or done == count):
            shapes.flush(parts.shape_db)  # the shape log's thread
        t5 = clock()
        settling, parts.guard_spent = parts.guard_spent, 0.0  # on the recorder's thread
        guard = t0 - tg + settling  # its reservations and its settlements
        times = (t1 - t0, guard, t2 - t1 - settling, t3 - t2, t4 - t3, t5 - t4)
        for name, spent_s in zip(PARTS, times, strict=True):
            spent[name] += spent_s


def main() -> None:
    """Print each part's CPU µs per request (or profile them, or run `--count` for valgrind)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=None, help="run this many and print nothing")
    parser.add_argument("--requests", type=int, default=21000, help="requests per measured round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--guard", action="store_true", help="with the spend guard on (the --guard-on row's budget)"
    )
    parser.add_argument(
        "--worker",
        action="store_true",
        help="log as a worker of --workers N does (its lines carry its pid)",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=("insert", "sinks", "shapes", "log"),
        help="leave a part out (repeatable; to count each part's instructions)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="record-cost-") as tmp:
        home = Path(tmp)
        log_file = (home / "gateway.log").open("w")
        level = logging.WARNING if "log" in args.skip else logging.INFO
        handler = LogHandler(log_file, WORKER_FORMAT) if args.worker else LogHandler(log_file)
        logging.basicConfig(level=level, handlers=[handler])
        skip = frozenset(args.skip)
        parts = Parts(home, args.guard)
        # As `driftgate proxy` does (server.py): every line passes the gateway's redaction.
        handler.addFilter(RedactingFilter(Redactor(b.key for b in parts.config.backends)))
        spent = dict.fromkeys(PARTS, 0.0)
        try:
            if args.count is not None:
                run(parts, args.count, spent, skip)
                return
            run(parts, 2 * SHAPE_EVERY, spent)  # warm: caches, the database's pages
            if args.profile:
                _profile(lambda: run(parts, args.requests, dict.fromkeys(PARTS, 0.0)))
                return
            rounds = []
            for _ in range(args.rounds):
                spent = dict.fromkeys(PARTS, 0.0)
                run(parts, args.requests, spent, skip)
                rounds.append(spent)
            print(f"CPU µs per request, median of {args.rounds} rounds of {args.requests}:")
            for name in (*PARTS, "total"):
                each = sorted(
                    (sum(r.values()) if name == "total" else r[name]) * 1e6 / args.requests
                    for r in rounds
                )
                print(f"  {name:8} {each[len(each) // 2]:7.2f}   (min {each[0]:.2f})")
        finally:
            parts.close()
            log_file.close()


def _profile(work: Callable[[], None]) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(work)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
