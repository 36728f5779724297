"""Window summaries: per model, backend, client and session; percentiles, error rate, burn rate."""

from __future__ import annotations

from typing import Any

import pytest

from driftgate.proxy.observe.recorder import Recorder
from driftgate.proxy.observe.records import RequestRecord
from driftgate.proxy.observe.summary import BadWindow, parse_window, summarise_window

BASE = RequestRecord(
    1000.0, "anthropic", "claude-sonnet-4-6", "anthropic", "anthropic", "messages", 200, False,
    100, 50, 0, 0, 100.0, 40.0, "s1", 0.01, "req_1", "claude-cli", "2.0.14", "sonnet",
)  # fmt: skip


def _summary(records: list[RequestRecord], since: float = 0.0, until: float = 3600.0) -> Any:
    rec = Recorder(None)
    for r in records:
        rec.record(r)
    rec.flush()
    summary = rec.query(lambda c: summarise_window(c, since, until), None)
    rec.close()
    assert summary is not None
    return summary.as_json()


def test_totals_and_groups() -> None:
    records = [BASE._replace(latency_ms=float(ms)) for ms in range(10, 110, 10)]  # 10 requests
    records.append(BASE._replace(status=529, cost_usd=None, output_tokens=0, session="s2"))
    records.append(BASE._replace(backend="local", model="qwen", client="openai-python",
                                 cost_usd=None, session=None))  # fmt: skip
    records.append(BASE._replace(endpoint="count_tokens", output_tokens=0, cost_usd=0.0))
    records.append(BASE._replace(status=499, session="s2"))  # the client hung up: not an error
    doc = _summary(records)
    total = doc["total"]
    assert total["requests"] == 13 and total["count_tokens"] == 1
    assert total["errors"] == 1 and total["error_rate"] == pytest.approx(1 / 13, abs=1e-4)
    assert total["unpriced"] == 1  # qwen; the 529 is an error, not unpriced
    assert total["cost_usd"] == pytest.approx(0.11)
    assert total["cost_per_hour"] == pytest.approx(0.11)  # a one-hour window
    assert {g["key"] for g in doc["models"]} == {"claude-sonnet-4-6", "qwen"}
    assert {g["key"] for g in doc["backends"]} == {"anthropic", "local"}
    assert {g["key"]: g["requests"] for g in doc["clients"]} == {
        "claude-cli": 12,
        "openai-python": 1,
    }
    assert {g["key"]: g["requests"] for g in doc["sessions"]} == {"s1": 10, "s2": 2}
    assert doc["session_count"] == 2
    assert doc["window_seconds"] == 3600.0


def test_percentiles_are_nearest_rank() -> None:
    records = [BASE._replace(latency_ms=float(ms), ttfb_ms=None) for ms in range(1, 101)]
    total = _summary(records)["total"]
    assert total["p50_latency_ms"] == 50.0 and total["p95_latency_ms"] == 95.0
    assert total["p50_ttfb_ms"] is None


def test_the_window_bounds_what_is_counted() -> None:
    records = [BASE._replace(ts=100.0), BASE._replace(ts=5000.0)]
    assert _summary(records, since=1000.0, until=6000.0)["total"]["requests"] == 1


@pytest.mark.parametrize(
    ("text", "seconds"), [("60m", 3600.0), ("24h", 86400.0), ("7d", 604800.0), ("90s", 90.0),
                          ("15", 900.0), ("1.5h", 5400.0)],
)  # fmt: skip
def test_windows(text: str, seconds: float) -> None:
    assert parse_window(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "0m", "-5m", "10y"])
def test_bad_windows_say_what_is_expected(text: str) -> None:
    with pytest.raises(BadWindow, match=r"e\.g\. 60m"):
        parse_window(text)
