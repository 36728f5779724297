"""The Status tab: the gateway's health, its templates and hashes, the spend guard."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from driftgate.proxy.top.format import bar, clock, usd
from driftgate.proxy.top.state import TopState

STATUS_STYLE = {"ok": "bold green", "degraded": "bold yellow", "halted": "bold red"}


def status_view(state: TopState) -> RenderableType:
    """Everything the Status tab shows."""
    health = state.health
    if health is None:
        return Text("waiting for the gateway's /health ...", style="dim")
    parts: list[RenderableType] = [_headline(state, health)]
    for problem in health.get("problems", []):
        parts.append(Text(f"  ! {problem}", style="yellow"))
    if health.get("message"):
        parts.append(Text(f"  {health['message']}", style="yellow"))
    parts += [Text(""), _guard(state.guard), Text(""), _templates(health)]
    return Group(*parts)


def _headline(state: TopState, health: dict[str, Any]) -> Text:
    status = str(health.get("status", "?"))
    line = Text("Gateway ", style="bold")
    line.append(state.url)
    line.append("   status ")
    line.append(status, style=STATUS_STYLE.get(status, "bold"))
    line.append(f"   driftgate {health.get('version', '?')}")
    conns = health.get("connections")
    if isinstance(conns, dict):
        line.append(f"   connections {conns.get('open', 0)}/{conns.get('max', '?')}")
    return line


def _guard(guard: dict[str, Any]) -> RenderableType:
    if not guard.get("enabled"):
        return Text("Spend guard: off (no [guard] budgets in the gateway's config)", style="dim")
    halted = guard.get("state") == "halted"
    head = Text("Spend guard: ", style="bold")
    store = guard.get("store") or {}
    if guard.get("state") == "store_unreachable":  # its shared store (Redis) does not answer
        head.append("STORE UNREACHABLE", style="bold black on yellow")
        head.append(f"   action = {guard.get('action', '?')}")
        what = (
            "requests go through unguarded"
            if store.get("fail") == "open"
            else "completions are refused (503)"
        )
        why = f"  {store.get('url', '?')}: {store.get('error', '?')}; {what}"
        return Group(head, Text(why, style="yellow"))
    head.append("HALTED" if halted else "ok", style="bold white on red" if halted else "bold green")
    head.append(f"   action = {guard.get('action', '?')}")
    head.append(f"   in flight {usd(guard.get('in_flight_usd', 0.0))}")
    lines: list[RenderableType] = [head]
    if halted:
        lines.append(Text(f"  why: {guard.get('reason', '?')}", style="red"))
        since = f"  since {clock(guard.get('since'))}"
        until = guard.get("until")
        since += f", lifts by itself at {clock(until)}" if until else ", until resumed"
        lines.append(Text(since))
        lines.append(Text("  press r to resume (earlier spend stops counting)", style="bold"))
    limits = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    for col in ("budget", "spent", "", "limit"):
        limits.add_column(col)
    for limit in guard.get("limits", []):
        spent, cap = float(limit.get("spent_usd", 0.0)), float(limit.get("usd", 0.0))
        share = spent / cap if cap else 0.0
        style = "red" if share >= 1 else "yellow" if share >= 0.8 else "green"
        limits.add_row(str(limit.get("name", "?")), usd(spent), bar(share, style=style), usd(cap))
    if guard.get("limits"):
        lines.append(limits)
    return Group(*lines)


def _templates(health: dict[str, Any]) -> RenderableType:
    table = Table(title="Templates", title_justify="left", title_style="bold", box=None,
                  header_style="bold")  # fmt: skip
    for col in ("name", "kind", "version", "hash"):
        table.add_column(col)
    for t in health.get("templates", []):
        table.add_row(str(t.get("name")), str(t.get("kind")), str(t.get("version")),
                      str(t.get("hash", "")))  # fmt: skip
    errors = [
        Text(f"  template error: {e}", style="red") for e in health.get("template_errors", [])
    ]
    return Group(table, *errors)
