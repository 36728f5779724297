"""The Backends tab: each backend's state, cooldown, recent error rate and window totals."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from driftgate.proxy.top.format import clock, ms, percent, seconds
from driftgate.proxy.top.state import TopState

STATE_STYLE = {"ok": "green", "cooling": "yellow", "no_key": "red"}


def backends_view(state: TopState) -> RenderableType:
    """Everything the Backends tab shows."""
    health = state.health
    if health is None:
        return Text("waiting for the gateway's /health ...", style="dim")
    backends = health.get("backends", [])
    if not backends:
        return Text(str(health.get("message", "no backends configured")), style="yellow")
    totals = {g.get("key"): g for g in (state.analytics or {}).get("backends", [])}
    table = Table(box=None, header_style="bold")
    cols = ("backend", "kind", "base URL", "state", "cooldown", "recent errors", "probe",
            f"requests {state.window}", "error rate", "p50 latency")  # fmt: skip
    for col in cols:
        table.add_column(col)
    notes: list[RenderableType] = []
    for b in backends:
        name = str(b.get("name"))
        st = str(b.get("state", "?"))
        recent = b.get("recent") or {}
        probe = state.probes.get(name) or {}
        window = totals.get(name, {})
        table.add_row(
            name,
            str(b.get("kind", "?")),
            str(b.get("base_url", "")),
            Text(st, style=STATE_STYLE.get(st, "yellow")),
            seconds(b.get("cooldown_seconds")) if b.get("cooldown_seconds") else "-",
            _recent(recent),
            _probe(probe),
            str(window.get("requests", 0)),
            percent(window.get("error_rate")) if window else "-",
            ms(window.get("p50_latency_ms")),
        )
        if b.get("message"):
            notes.append(Text(f"{name}: {b['message']}", style="yellow"))
    hint = Text("press p to probe every backend (one free model-list request each)", style="dim")
    if state.probed_at is not None:
        hint = Text(f"probed at {clock(state.probed_at)}; press p to probe again", style="dim")
    return Group(table, *notes, Text(""), hint)


def _recent(recent: dict[str, Any]) -> Text:
    attempts = int(recent.get("attempts") or 0)
    if not attempts:
        return Text("-")
    rate = float(recent.get("error_rate") or 0.0)
    style = "red" if rate >= 0.5 else "yellow" if rate > 0 else "green"
    return Text(f"{percent(rate)} of {attempts}", style=style)


def _probe(probe: dict[str, Any]) -> Text:
    if not probe:
        return Text("-")
    st = str(probe.get("state", "?"))
    detail = probe.get("message") or ms(probe.get("latency_ms"))
    return Text(f"{st} {detail}".strip(), style="green" if st == "ok" else "yellow")
