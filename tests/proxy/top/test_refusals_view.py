"""Refused requests in `driftgate top`: the Analytics tab says how many and why, Hits marks them."""

from __future__ import annotations

from rich.console import Console, RenderableType
from rich.table import Table

from driftgate.proxy.top.analytics_view import analytics_view
from driftgate.proxy.top.hits_view import hit_detail, hit_row
from driftgate.proxy.top.state import Hit, TopState

REASON = "the daily total budget of $0.25 is reached ($0.30 spent or in flight)"
RECORD = {
    "ts": 1_796_040_000.0, "backend": "anthropic", "model": "claude-sonnet-4-6",
    "endpoint": "messages", "status": 503, "outcome": "guard_halted", "reason": REASON,
    "client": "claude-cli", "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0,
    "latency_ms": 0.4, "ttfb_ms": None,
}  # fmt: skip


def _text(shown: RenderableType) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(shown)
    return console.export_text()


def test_the_analytics_tab_lists_refusals_and_why() -> None:
    state = TopState("http://127.0.0.1:3456")
    state.analytics = {
        "total": {"requests": 1, "refused": 7, "cost_usd": 0.01},
        "models": [],
        "refusals": [{"outcome": "guard_halted", "reason": REASON, "backend": "anthropic",
                      "requests": 7, "first": 1_796_040_000.0, "last": 1_796_040_060.0}],
    }  # fmt: skip
    shown = _text(analytics_view(state))
    assert "7 refused" in shown
    assert "Refused without forwarding" in shown
    assert REASON in shown and "guard_halted" in shown
    state.analytics = {"total": {"requests": 1}, "models": []}  # nothing refused: nothing said
    assert "refused" not in _text(analytics_view(state)).lower()


def test_hits_mark_a_refused_request_and_the_drill_down_says_why() -> None:
    hit = Hit(1, RECORD)
    table = Table()
    for _ in hit_row(hit):
        table.add_column()
    table.add_row(*hit_row(hit))
    assert "503 refused" in _text(table)
    detail = _text(hit_detail(hit))
    assert "guard_halted" in detail and REASON in detail
