"""The Analytics tab: cost and tokens per model, burn rate, rate-limit utilisation."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from driftgate.proxy.top.format import bar, clock, count, ms, percent, seconds, usd
from driftgate.proxy.top.state import TopState


def analytics_view(state: TopState) -> RenderableType:
    """Everything the Analytics tab shows."""
    if state.analytics_problem:
        return Text(state.analytics_problem, style="yellow")
    doc = state.analytics
    if doc is None:
        return Text("waiting for the gateway's /analytics ...", style="dim")
    total = doc.get("total", {})
    parts: list[RenderableType] = [
        _headline(state.window, total),
        Text(""),
        _per_model(doc.get("models", [])),
        Text(""),
        _ratelimits(state.ratelimits),
    ]
    refusals = doc.get("refusals") or []
    if refusals:
        parts += [Text(""), _refusals(refusals)]
    recorder = doc.get("recorder") or {}
    if recorder.get("dropped"):
        parts.append(Text(f"recorder dropped {recorder['dropped']} records (it fell behind)",
                          style="yellow"))  # fmt: skip
    return Group(*parts)


def _headline(window: str, total: dict[str, Any]) -> Text:
    line = Text(f"Last {window}", style="bold")
    line.append(f"   {total.get('requests', 0)} requests   {usd(total.get('cost_usd'))}")
    line.append("   burn rate ")
    line.append(f"{usd(total.get('cost_per_hour'))}/h", style="bold")
    line.append(f"   {count(total.get('tokens_per_hour'))} tokens/h")
    line.append(f"   errors {percent(total.get('error_rate'))}")
    line.append(f"   p50 {ms(total.get('p50_latency_ms'))}  p95 {ms(total.get('p95_latency_ms'))}")
    if total.get("refused"):
        line.append(f"   {total['refused']} refused", style="bold red")
    if total.get("unpriced"):
        line.append(f"   ({total['unpriced']} unpriced: cost is a lower bound)", style="yellow")
    return line


def _refusals(refusals: list[dict[str, Any]]) -> RenderableType:
    table = Table(title="Refused without forwarding (the spend guard)", title_justify="left",
                  title_style="bold red", box=None, header_style="bold")  # fmt: skip
    for col in ("requests", "backend", "outcome", "why", "last"):
        table.add_column(col)
    for r in refusals:
        table.add_row(
            str(r.get("requests", 0)),
            str(r.get("backend") or "-"),
            str(r.get("outcome") or "-"),
            Text(str(r.get("reason") or "-")),
            clock(r.get("last")),
        )
    return table


def _per_model(models: list[dict[str, Any]]) -> RenderableType:
    if not models:
        return Text("no requests in this window yet", style="dim")
    top_cost = max((float(m.get("cost_usd") or 0) for m in models), default=0.0) or 1.0
    top_tokens = max((_tokens(m) for m in models), default=0) or 1
    table = Table(title="Per model", title_justify="left", title_style="bold", box=None,
                  header_style="bold")  # fmt: skip
    for col in ("model", "requests", "cost", "", "tokens", "", "burn/h", "errors"):
        table.add_column(col)
    for m in models:
        cost, tokens = float(m.get("cost_usd") or 0), _tokens(m)
        table.add_row(
            str(m.get("key")),
            str(m.get("requests", 0)),
            usd(cost),
            bar(cost / top_cost, 16, "magenta"),
            count(tokens),
            bar(tokens / top_tokens, 16, "cyan"),
            usd(m.get("cost_per_hour")),
            percent(m.get("error_rate")),
        )
    return table


def _tokens(group: dict[str, Any]) -> int:
    keys = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
    return sum(int(group.get(k) or 0) for k in keys)


def _ratelimits(limits: dict[str, dict[str, Any]]) -> RenderableType:
    if not limits:
        return Text("Rate limits: no rate-limit headers seen yet (they come with live requests)",
                    style="dim")  # fmt: skip
    table = Table(title="Rate-limit utilisation (the latest answer of each backend)",
                  title_justify="left", title_style="bold", box=None, header_style="bold")  # fmt: skip
    for col in ("backend", "requests used", "", "tokens used", "", "resets in", "retry-after"):
        table.add_column(col)
    now = time.time()
    for backend, rl in sorted(limits.items()):
        reset = rl.get("rl_reset_s")
        if reset is not None and rl.get("ts"):
            reset = max(0.0, reset - (now - float(rl["ts"])))
        table.add_row(
            backend,
            *_used(rl.get("rl_requests_limit"), rl.get("rl_requests_remaining")),
            *_used(rl.get("rl_tokens_limit"), rl.get("rl_tokens_remaining")),
            seconds(reset),
            seconds(rl.get("retry_after_s")),
        )
    return table


def _used(limit: int | None, remaining: int | None) -> tuple[str, RenderableType]:
    if not limit or remaining is None:
        return "-", ""
    share = (limit - remaining) / limit
    style = "red" if share >= 0.9 else "yellow" if share >= 0.7 else "green"
    return f"{percent(share)} ({remaining}/{limit} left)", bar(share, 16, style)
