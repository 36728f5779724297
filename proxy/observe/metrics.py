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
from driftgate.proxy.observe.labels import ModelLabels, status_label
from driftgate.proxy.observe.records import RequestRecord

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
GUARD_STATES = ["ok", "warn", "halted"]
TOKEN_KINDS = ("input", "output", "cache_read", "cache_write", "reasoning")


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last slot is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*BUCKETS, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


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
        self.registry.register(_Collector(self))

    def consume(self, records: Sequence[RequestRecord]) -> None:
        """A record sink: add a batch to the totals (runs on the recorder's thread)."""
        model_label, backend_label = self._labels.model, self._labels.backend
        with self._lock:
            for r in records:
                key = (model_label(r.model), backend_label(r.backend))
                self._requests[(*key, status_label(r.status))] += 1
                for kind, count in zip(TOKEN_KINDS, (r.input_tokens, r.output_tokens,
                        r.cache_read_tokens, r.cache_write_tokens, r.reasoning_tokens), strict=True):  # fmt: skip
                    if count:
                        self._tokens[(*key, kind)] += count
                if r.cost_usd:
                    self._cost[key] += r.cost_usd
                if r.endpoint == "count_tokens":
                    continue
                self._latency[key].observe(r.latency_ms / 1000.0)
                if r.ttfb_ms is not None:
                    self._ttfb[key].observe(r.ttfb_ms / 1000.0)

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)

    def families(self) -> Iterator[Metric]:
        """Every driftgate metric family as it stands now."""
        with self._lock:
            requests = dict(self._requests)
            tokens = dict(self._tokens)
            cost = dict(self._cost)
            latency = {k: (h.cumulative(), h.total) for k, h in self._latency.items()}
            ttfb = {k: (h.cumulative(), h.total) for k, h in self._ttfb.items()}
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
        yield from self._live()

    def _live(self) -> Iterator[Metric]:
        s = self.sources
        if s.upstream_errors is not None:
            fam = CounterMetricFamily("driftgate_upstream_errors", "Failed upstream attempts by backend and kind "
                                      "(timeout, connect, auth, rate_limited, server, stream)",
                                      labels=["backend", "kind"])  # fmt: skip
            for (backend, kind), n in sorted(s.upstream_errors().items()):
                fam.add_metric([self._labels.backend(backend), kind], n)
            yield fam
        if s.cooldowns_started is not None:
            fam = CounterMetricFamily("driftgate_cooldowns", "Cooldowns started per backend",
                                      labels=["backend"])  # fmt: skip
            for backend, n in sorted(s.cooldowns_started().items()):
                fam.add_metric([self._labels.backend(backend)], n)
            yield fam
        if s.cooling is not None:
            gauge = GaugeMetricFamily("driftgate_backend_cooldown_seconds",
                                      "Seconds until a cooling backend is tried again", labels=["backend"])  # fmt: skip
            for backend, left in sorted(s.cooling().items()):
                gauge.add_metric([self._labels.backend(backend)], left)
            yield gauge
        if s.queue_depth is not None:
            yield GaugeMetricFamily("driftgate_recorder_queue_depth",
                                    "Records waiting for the recorder's thread", value=s.queue_depth())  # fmt: skip
        if s.dropped is not None:
            yield CounterMetricFamily("driftgate_recorder_dropped", "Records dropped because the "
                                      "recorder was behind", value=s.dropped())  # fmt: skip
        if s.guard_store_up is not None:
            yield GaugeMetricFamily("driftgate_guard_store_up", "1 when the spend guard's shared "
                                    "store (Redis) answers, 0 when it is unreachable",
                                    value=1 if s.guard_store_up() else 0)  # fmt: skip
        if s.guard_unguarded is not None:
            yield CounterMetricFamily("driftgate_guard_unguarded_requests", "Requests let through "
                                      "unguarded while the guard's store was unreachable (fail open)",
                                      value=s.guard_unguarded())  # fmt: skip
        if s.database is not None:
            yield from _database_families(s.database())
        if s.stream_subscribers is not None:
            yield GaugeMetricFamily("driftgate_analytics_stream_subscribers",
                                    "Clients following /analytics/stream", value=s.stream_subscribers())  # fmt: skip


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


def _histogram(
    name: str, doc: str, data: dict[tuple[str, str], tuple[list[tuple[str, float]], float]]
) -> HistogramMetricFamily:
    fam = HistogramMetricFamily(name, doc, labels=["model", "backend"])
    for labels, (buckets, total) in sorted(data.items()):
        fam.add_metric(list(labels), buckets, sum_value=total)
    return fam


class _Collector:
    def __init__(self, metrics: GatewayMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics.families()
