"""/metrics with --workers N: a scrape of any worker adds up every worker's totals."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from driftgate.proxy.config import BackendConfig, load_config
from driftgate.proxy.observe.labels import ModelLabels
from driftgate.proxy.observe.metrics import GatewayMetrics, Sources
from driftgate.proxy.observe.metrics_share import SharedTotals, clear
from driftgate.proxy.observe.records import RequestRecord
from driftgate.proxy.templates.loader import load_bundled

RECORD = RequestRecord(
    1000.0, "anthropic", "claude-sonnet-4-6", "anthropic", "anthropic", "messages", 200, False,
    100, 50, 0, 0, 100.0, 40.0, "s1", 0.01, "req_1", "claude-cli", "2.0.14", "sonnet",
)  # fmt: skip


def worker(directory: Path, pid: int, errors: int) -> tuple[GatewayMetrics, SharedTotals]:
    config = replace(
        load_config({"DRIFTGATE_HOME": str(directory)}),
        backends=(BackendConfig("anthropic", "anthropic", "http://127.0.0.1:9"),),
    )
    templates = load_bundled()
    sources = Sources(upstream_errors=lambda: {("anthropic", "timeout"): errors})
    metrics = GatewayMetrics(ModelLabels(config, lambda: templates), sources)
    shared = SharedTotals(directory / "metrics", metrics.snapshot, pid=pid)
    metrics.peers = shared.others
    return metrics, shared


def line(text: str, start: str) -> str:
    return next(row for row in text.splitlines() if row.startswith(start))


def test_a_scrape_of_one_worker_counts_every_workers_requests(tmp_path: Path) -> None:
    a, a_file = worker(tmp_path, 101, errors=1)
    b, b_file = worker(tmp_path, 102, errors=2)
    a.consume([RECORD, RECORD])
    b.consume([RECORD._replace(status=500, latency_ms=2000.0)])
    b_file.write()
    text = a.render().decode()
    assert (
        'driftgate_requests_total{backend="anthropic",model="claude-sonnet-4-6",status="200"} 2.0'
        in text
    )
    assert (
        'driftgate_requests_total{backend="anthropic",model="claude-sonnet-4-6",status="500"} 1.0'
        in text
    )
    assert line(text, "driftgate_request_duration_seconds_count").endswith(" 3.0")
    assert line(
        text, 'driftgate_request_duration_seconds_bucket{backend="anthropic",le="0.1"'
    ).endswith(" 2.0")
    assert line(text, "driftgate_upstream_errors_total").endswith(" 3.0")
    a_file.write()
    assert 'status="200"} 2.0' in b.render().decode()  # and the other way round


def test_a_new_run_starts_from_nothing(tmp_path: Path) -> None:
    a, _ = worker(tmp_path, 101, errors=0)
    b, b_file = worker(tmp_path, 102, errors=0)
    b.consume([RECORD])
    b_file.write()
    clear(tmp_path / "metrics")
    assert "driftgate_requests_total{" not in a.render().decode()
