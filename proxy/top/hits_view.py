"""The Hits tab: one row per live request record, and the drill-down into one record."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from driftgate.proxy.top.format import clock, count, ms, seconds, usd
from driftgate.proxy.top.state import Hit

COLUMNS = ("time", "client", "endpoint", "model", "backend", "status", "in", "out", "cost",
           "latency", "ttfb")  # fmt: skip
# The drill-down, in this order; any other field of a record (a newer gateway's) follows.
DETAIL_ORDER = (
    ("request id", "request_id"),
    ("time", "ts"),
    ("client", "client"),
    ("client version", "client_version"),
    ("session", "session"),
    ("endpoint", "endpoint"),
    ("dialects", "client_dialect"),
    ("model requested", "model_requested"),
    ("model", "model"),
    ("backend", "backend"),
    ("status", "status"),
    ("refused", "outcome"),
    ("why", "reason"),
    ("stream", "stream"),
    ("input tokens", "input_tokens"),
    ("output tokens", "output_tokens"),
    ("cache read", "cache_read_tokens"),
    ("cache write", "cache_write_tokens"),
    ("reasoning", "reasoning_tokens"),
    ("cost", "cost_usd"),
    ("latency", "latency_ms"),
    ("time to first byte", "ttfb_ms"),
)
SPLIT = 14  # the drill-down's left column: who and where; the right one: tokens, cost, time, limits
_SHOWN = {k for _, k in DETAIL_ORDER} | {"upstream_dialect", "ratelimit", "retry_after_s"}


def hit_row(hit: Hit) -> tuple[str | Text, ...]:
    """The Hits table's cells for one record."""
    d = hit.doc
    status = int(d.get("status") or 0)
    style = "green" if status < 400 else "yellow" if status in (429, 499) else "red"
    model = str(d.get("model") or "")
    if d.get("model_requested") and d["model_requested"] != model:
        model = f"{d['model_requested']} → {model}"
    return (
        clock(d.get("ts")),
        str(d.get("client") or "-"),
        str(d.get("endpoint") or "-") + (" ~" if d.get("stream") else ""),
        model,
        str(d.get("backend") or "-"),
        Text(f"{status} refused" if d.get("outcome") else str(status), style=style),
        count(d.get("input_tokens")),
        count(d.get("output_tokens")),
        usd(d.get("cost_usd")),
        ms(d.get("latency_ms")),
        ms(d.get("ttfb_ms")),
    )


def hit_detail(hit: Hit | None) -> RenderableType:
    """One request's metadata (records never hold content: no prompt, no answer, no key)."""
    if hit is None:
        return Text("select a request (↑/↓, enter) to see its metadata", style="dim")
    d = hit.doc
    left = [(label, _value(key, d)) for label, key in DETAIL_ORDER[:SPLIT]]
    right = [(label, _value(key, d)) for label, key in DETAIL_ORDER[SPLIT:]]
    right += [(key, _plain(d[key])) for key in sorted(set(d) - _SHOWN) if not key.startswith("rl_")]
    right += _ratelimit_rows(d)
    table = Table(box=None, show_header=False, pad_edge=False)
    for style in ("bold", "", "bold", ""):
        table.add_column(style=style)
    for i in range(max(len(left), len(right))):
        a = left[i] if i < len(left) else ("", "")
        b = right[i] if i < len(right) else ("", "")
        table.add_row(a[0], a[1], b[0], b[1])
    return Group(Text(f"Request #{hit.seq}", style="bold underline"), table)


def _value(key: str, d: dict[str, Any]) -> str:
    value = d.get(key)
    if key == "ts":
        return clock(value)
    if key == "cost_usd":
        return usd(value) if value is not None else "unknown (no price in the template)"
    if key in ("latency_ms", "ttfb_ms"):
        return ms(value)
    if key == "client_dialect":
        return f"{value} → {d.get('upstream_dialect')}"
    return _plain(value)


def _plain(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def _ratelimit_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    """The answer's rate-limit headers, as sent (names shortened past their prefix)."""
    rows: list[tuple[str, str]] = []
    if d.get("retry_after_s") is not None:
        rows.append(("retry-after", seconds(d["retry_after_s"])))
    raw = d.get("ratelimit")
    try:
        headers = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        headers = {}
    rows += [(str(name), str(value)) for name, value in sorted(headers.items())]
    return rows


def hits_source(health: dict[str, Any] | None) -> Text:
    """Whose requests the Hits tab lists: every worker's, or the one worker the stream is on."""
    worker = (health or {}).get("worker")
    if not isinstance(worker, dict):
        return Text("")  # one process: its requests are all of them
    workers = worker.get("workers", "?")
    if worker.get("live_stream") == "every worker":
        return Text(f"requests of all {workers} workers")
    return Text(
        f"requests of worker pid {worker.get('pid', '?')} only, 1 of {workers} workers: the "
        "others' are not listed (every worker's are streamed from the SQLite usage file only)",
        style="bold yellow",
    )
