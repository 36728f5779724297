"""GET /metrics: Prometheus text through prometheus_client, one registry per app.

Per-request families are aggregated from each batch of records on the recorder's thread (a
dict update per distinct label set, a bisect per latency), so the request path pays nothing;
the collector turns the totals into metric families at scrape time. Labels are bounded: models
the config or templates route (else "other"), configured backends, HTTP status codes, kinds.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Enum, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)

from driftgate.proxy import __version__
from driftgate.proxy.endpoints import COUNTING
from driftgate.proxy.observe.labels import OTHER, ModelLabels, status_label
from driftgate.proxy.observe.records import RequestRecord

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
GUARD_STATES = ["ok", "warn", "halted"]
# labels.status_label of every status it does not call "other", looked up
_STATUS_LABELS = {status: status_label(status) for status in range(100, 600)}


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last slot is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds


def _cumulative(counts: Sequence[int]) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
        running += count
        out.append(("+Inf" if bound == float("inf") else repr(bound), running))
    return out


Snapshot = dict[str, Any]  # one worker's totals as JSON (metrics_share.py)


class Sources:
    """Live numbers read at scrape time (each a callable; None when not wired)."""

    def __init__(
        self,
        queue_depth: Callable[[], int] | None = None,
        dropped: Callable[[], int] | None = None,
        upstream_errors: Callable[[], dict[tuple[str, str], int]] | None = None,
        cooldowns_started: Callable[[], dict[str, int]] | None = None,
        cooling: Callable[[], dict[str, float]] | None = None,
        stream_subscribers: Callable[[], int] | None = None,
        database: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.queue_depth = queue_depth
        self.dropped = dropped
        self.upstream_errors = upstream_errors
        self.cooldowns_started = cooldowns_started
        self.cooling = cooling
        self.stream_subscribers = stream_subscribers
        # The spend guard's shared store (Redis), set by the app when [state] redis_url is set.
        self.guard_store_up: Callable[[], bool] | None = None
        self.guard_unguarded: Callable[[], int] | None = None
        self.database = database  # the PostgreSQL writer's state, when records go there


class GatewayMetrics:
    """The app's metrics: a record sink (`consume`) plus gauges others set (`guard_state`)."""

    def __init__(self, labels: ModelLabels, sources: Sources | None = None) -> None:
        self.registry = CollectorRegistry()
        self._labels = labels
        self.sources = sources or Sources()
        self._lock = threading.Lock()
        self._requests: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self._tokens: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self._cost: defaultdict[tuple[str, str], float] = defaultdict(float)
        self._latency: defaultdict[tuple[str, str], _Histogram] = defaultdict(_Histogram)
        self._ttfb: defaultdict[tuple[str, str], _Histogram] = defaultdict(_Histogram)
        # The spend guard sets this: driftgate_guard_state{driftgate_guard_state="halted"} 1.
        self.guard_state = Enum(
            "driftgate_guard_state",
            "The spend guard's state",
            states=GUARD_STATES,
            registry=self.registry,
        )
        # With --workers N: the other workers' last snapshots, added to this one's at a scrape.
        self.peers: Callable[[], list[Snapshot]] | None = None
        self.registry.register(_Collector(self))

    def consume(self, records: Sequence[RequestRecord]) -> None:
        """A record sink: add a batch to the totals (runs on the recorder's thread)."""
        model_label, backend_label = self._labels.model, self._labels.backend
        labelled: dict[tuple[str, str], tuple[str, str]] = {}  # labels once per model a batch
        requests, tokens, costs = self._requests, self._tokens, self._cost
        latencies, ttfbs = self._latency, self._ttfb
        with self._lock:
            for r in records:
                key = labelled.get((r.model, r.backend))
                if key is None:
                    key = labelled[(r.model, r.backend)] = (
                        model_label(r.model),
                        backend_label(r.backend),
                    )
                model, backend = key
                requests[(model, backend, _STATUS_LABELS.get(r.status, OTHER))] += 1
                if r.input_tokens:
                    tokens[(model, backend, "input")] += r.input_tokens
                if r.output_tokens:
                    tokens[(model, backend, "output")] += r.output_tokens
                if r.cache_read_tokens:
                    tokens[(model, backend, "cache_read")] += r.cache_read_tokens
                if r.cache_write_tokens:
                    tokens[(model, backend, "cache_write")] += r.cache_write_tokens
                if r.reasoning_tokens:
                    tokens[(model, backend, "reasoning")] += r.reasoning_tokens
                if r.cost_usd:
                    costs[key] += r.cost_usd
                if r.endpoint in COUNTING or r.outcome is not None:
                    continue  # a token count, or refused before forwarding: no upstream time
                # _Histogram.observe, inline: a method call a record was a third of this loop
                seconds = r.latency_ms / 1000.0
                hist = latencies[key]
                hist.counts[bisect_left(BUCKETS, seconds)] += 1
                hist.total += seconds
                if r.ttfb_ms is not None:
                    seconds = r.ttfb_ms / 1000.0
                    hist = ttfbs[key]
                    hist.counts[bisect_left(BUCKETS, seconds)] += 1
                    hist.total += seconds

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)

    def snapshot(self) -> Snapshot:
        """This process's totals, JSON-able, for the other workers' scrapes."""
        with self._lock:
            snap: Snapshot = {
                "requests": [[*k, n] for k, n in self._requests.items()],
                "tokens": [[*k, n] for k, n in self._tokens.items()],
                "cost": [[*k, usd] for k, usd in self._cost.items()],
                "latency": [[*k, h.counts, h.total] for k, h in self._latency.items()],
                "ttfb": [[*k, h.counts, h.total] for k, h in self._ttfb.items()],
            }
        snap["live"] = self._live_numbers()
        return snap

    def families(self) -> Iterator[Metric]:
        """Every driftgate metric family as it stands now (every worker's, with --workers N)."""
        with self._lock:
            requests = dict(self._requests)
            tokens = dict(self._tokens)
            cost = dict(self._cost)
            latency = {k: (list(h.counts), h.total) for k, h in self._latency.items()}
            ttfb = {k: (list(h.counts), h.total) for k, h in self._ttfb.items()}
        live = self._live_numbers()
        for peer in self.peers() if self.peers is not None else ():
            _merge(peer, requests, tokens, cost, latency, ttfb, live)
        info = InfoMetricFamily("driftgate_build", "driftgate's version")
        info.add_metric([], {"version": __version__})
        yield info
        yield _counter("driftgate_requests", "Requests answered, by routed model, backend and "
                       "HTTP status", ["model", "backend", "status"], requests.items())  # fmt: skip
        yield _counter("driftgate_tokens", "Tokens by routed model, backend and kind",
                       ["model", "backend", "kind"], tokens.items())  # fmt: skip
        yield _counter("driftgate_cost_usd", "Estimated cost in USD from the templates' prices",
                       ["model", "backend"], cost.items())  # fmt: skip
        yield _histogram("driftgate_request_duration_seconds",
                         "Time from request to the end of the response", latency)  # fmt: skip
        yield _histogram("driftgate_time_to_first_byte_seconds",
                         "Time from request to the upstream's first byte", ttfb)  # fmt: skip
        yield from self._live(live)

    def _live_numbers(self) -> Snapshot:
        s = self.sources
        label = self._labels.backend
        live: Snapshot = {}
        if s.upstream_errors is not None:
            live["upstream_errors"] = [
                [label(b), kind, n] for (b, kind), n in s.upstream_errors().items()
            ]
        if s.cooldowns_started is not None:
            live["cooldowns"] = [[label(b), n] for b, n in s.cooldowns_started().items()]
        if s.cooling is not None:
            live["cooling"] = [[label(b), left] for b, left in s.cooling().items()]
        for name, source in (("queue_depth", s.queue_depth), ("dropped", s.dropped),
                             ("subscribers", s.stream_subscribers),
                             ("unguarded", s.guard_unguarded)):  # fmt: skip
            if source is not None:
                live[name] = source()
        return live

    def _live(self, live: Snapshot) -> Iterator[Metric]:
        if "upstream_errors" in live:
            fam = CounterMetricFamily("driftgate_upstream_errors", "Failed upstream attempts by backend and kind "
                                      "(timeout, connect, auth, rate_limited, server, stream)",
                                      labels=["backend", "kind"])  # fmt: skip
            for backend, kind, n in _summed(live["upstream_errors"]):
                fam.add_metric([backend, kind], n)
            yield fam
        if "cooldowns" in live:
            fam = CounterMetricFamily("driftgate_cooldowns", "Cooldowns started per backend",
                                      labels=["backend"])  # fmt: skip
            for backend, n in _summed(live["cooldowns"]):
                fam.add_metric([backend], n)
            yield fam
        if "cooling" in live:
            gauge = GaugeMetricFamily("driftgate_backend_cooldown_seconds",
                                      "Seconds until a cooling backend is tried again", labels=["backend"])  # fmt: skip
            longest: dict[str, float] = {}
            for backend, left in live["cooling"]:  # with workers: the longest any worker waits
                longest[backend] = max(left, longest.get(backend, 0.0))
            for backend, left in sorted(longest.items()):
                gauge.add_metric([backend], left)
            yield gauge
        if "queue_depth" in live:
            yield GaugeMetricFamily("driftgate_recorder_queue_depth",
                                    "Records waiting for the recorder's thread", value=live["queue_depth"])  # fmt: skip
        if "dropped" in live:
            yield CounterMetricFamily("driftgate_recorder_dropped", "Records dropped because the "
                                      "recorder was behind", value=live["dropped"])  # fmt: skip
        if self.sources.guard_store_up is not None:  # this worker's connection to the store
            yield GaugeMetricFamily("driftgate_guard_store_up", "1 when the spend guard's shared "
                                    "store (Redis) answers, 0 when it is unreachable",
                                    value=1 if self.sources.guard_store_up() else 0)  # fmt: skip
        if "unguarded" in live:
            yield CounterMetricFamily("driftgate_guard_unguarded_requests", "Requests let through "
                                      "unguarded while the guard's store was unreachable (fail open)",
                                      value=live["unguarded"])  # fmt: skip
        if self.sources.database is not None:  # this worker's writer to PostgreSQL
            yield from _database_families(self.sources.database())
        if "subscribers" in live:
            yield GaugeMetricFamily("driftgate_analytics_stream_subscribers",
                                    "Clients following /analytics/stream", value=live["subscribers"])  # fmt: skip


def _summed(rows: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """Rows of (labels..., number), equal labels added up, sorted."""
    total: dict[tuple[Any, ...], float] = {}
    for *labels, n in rows:
        key = tuple(labels)
        total[key] = total.get(key, 0) + n
    return [(*k, n) for k, n in sorted(total.items())]


Hist = dict[tuple[str, str], tuple[list[int], float]]


def _merge(
    peer: Snapshot,
    requests: dict[tuple[str, str, str], int],
    tokens: dict[tuple[str, str, str], int],
    cost: dict[tuple[str, str], float],
    latency: Hist,
    ttfb: Hist,
    live: Snapshot,
) -> None:
    """Add one other worker's snapshot to these totals."""
    for model, backend, status, n in peer.get("requests", ()):
        requests[(model, backend, status)] = requests.get((model, backend, status), 0) + n
    for model, backend, kind, n in peer.get("tokens", ()):
        tokens[(model, backend, kind)] = tokens.get((model, backend, kind), 0) + n
    for model, backend, usd in peer.get("cost", ()):
        cost[(model, backend)] = cost.get((model, backend), 0.0) + usd
    for name, mine in (("latency", latency), ("ttfb", ttfb)):
        for model, backend, counts, total in peer.get(name, ()):
            have = mine.get((model, backend))
            if have is None:
                mine[(model, backend)] = (list(counts), total)
            elif len(counts) == len(have[0]):
                mine[(model, backend)] = ([a + b for a, b in zip(have[0], counts, strict=True)],
                                          have[1] + total)  # fmt: skip
    theirs = peer.get("live", {})
    for name in ("upstream_errors", "cooldowns", "cooling"):
        if name in live:
            live[name] = [*live[name], *theirs.get(name, ())]
    for name in ("queue_depth", "dropped", "subscribers", "unguarded"):
        if name in live:
            live[name] += theirs.get(name, 0)


def _database_families(state: dict[str, Any]) -> Iterator[Metric]:
    yield GaugeMetricFamily("driftgate_analytics_db_up", "1 while the analytics database "
                            "(PostgreSQL) is connected", value=1 if state["connected"] else 0)  # fmt: skip
    yield GaugeMetricFamily("driftgate_analytics_db_queue_depth", "Records waiting for the "
                            "analytics database", value=state["backlog"])  # fmt: skip
    yield CounterMetricFamily("driftgate_analytics_db_written", "Records written to the "
                              "analytics database", value=state["written"])  # fmt: skip
    yield CounterMetricFamily("driftgate_analytics_db_dropped", "Records dropped because the "
                              "analytics database was down or behind past the queue's bound "
                              "(or refused them)", value=state["dropped"])  # fmt: skip


def _counter(
    name: str, doc: str, labels: list[str], data: Iterable[tuple[tuple[str, ...], float]]
) -> CounterMetricFamily:
    fam = CounterMetricFamily(name, doc, labels=labels)
    for values, total in sorted(data):
        fam.add_metric(list(values), total)
    return fam


def _histogram(name: str, doc: str, data: Hist) -> HistogramMetricFamily:
    fam = HistogramMetricFamily(name, doc, labels=["model", "backend"])
    for labels, (counts, total) in sorted(data.items()):
        fam.add_metric(list(labels), _cumulative(counts), sum_value=total)
    return fam


class _Collector:
    def __init__(self, metrics: GatewayMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics.families()
