"""`driftgate stats`: the analytics summary of a recent window, as tables or JSON."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from driftgate.proxy.cli.analytics_db import pg_reads
from driftgate.proxy.cli.usage import format_refusals
from driftgate.proxy.config import load_config
from driftgate.proxy.observe.summary import Group, Summary, parse_window, summarise_window
from driftgate.proxy.observe.usage_db import open_db, usage_db_path

EPILOG = """examples:
  driftgate stats                 # the last 60 minutes
  driftgate stats --window 24h    # s, m, h or d
  driftgate stats --json          # what GET /analytics answers

Reads $DRIFTGATE_HOME/usage.sqlite3, which the gateway writes after each response (a running
gateway's last ~50 ms may not be in yet), or with [analytics] database_url the per-minute
aggregates every gateway writes to PostgreSQL (whole minutes). Costs are estimates from the templates' prices; a cost
ending in '+' had requests with no known price."""

_COLUMNS = (
    ("requests", "REQS"),
    ("error_rate", "ERR%"),
    ("input_tokens", "IN"),
    ("output_tokens", "OUT"),
    ("cache_read_tokens", "CACHE_R"),
    ("cost_usd", "COST_USD"),
    ("cost_per_hour", "USD/H"),
    ("p50_latency_ms", "P50_MS"),
    ("p95_latency_ms", "P95_MS"),
    ("p50_ttfb_ms", "TTFB_P50"),
    ("refused", "REFUSED"),
)


def register(sub: Any) -> None:
    """Attach `driftgate stats`."""
    parser = sub.add_parser(
        "stats",
        help="analytics of a recent window: per model, backend, client and session",
        description="Requests, tokens, cost, burn rate, latency and error rate over a window.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--window", default="60m", metavar="WINDOW", help="how far back (default 60m; s, m, h, d)"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the summary."""
    config = load_config(path=Path(args.config) if getattr(args, "config", None) else None)
    seconds = parse_window(args.window)
    until = time.time()
    url = config.analytics.database_url
    if url:  # every gateway's per-minute aggregates
        summary = pg_reads(url).window(until - seconds, until)
    else:
        path = usage_db_path(config.home)
        if not path.exists():
            print(f"no usage recorded yet ({path})")
            return 0
        conn = open_db(path)
        try:
            summary = summarise_window(conn, until - seconds, until)
        finally:
            conn.close()
    if args.json:
        print(json.dumps(summary.as_json(), indent=2))
    else:
        print(format_summary(summary, args.window))
    return 0


def format_summary(summary: Summary, window: str) -> str:
    """The summary as a headline and one table per dimension."""
    t = summary.total
    if not t.requests and not t.count_tokens and not t.refused:
        return f"no requests in the last {window}"
    cost = f"${t.cost_usd:.4f}" + ("+" if t.unpriced else "")
    lines = [
        f"last {window}: {t.requests} requests, {t.errors} errors ({t.error_rate:.1%}), "
        f"{t.input_tokens:,} in / {t.output_tokens:,} out tokens, {cost} "
        f"(${t.cost_per_hour:.4f}/h), p50 {_num(t.p50_latency_ms)} ms"
        + (f"; {t.refused} refused by the spend guard" if t.refused else "")
    ]
    for title, groups in (("MODEL", summary.models), ("BACKEND", summary.backends),
                          ("CLIENT", summary.clients), ("SESSION", summary.sessions)):  # fmt: skip
        if groups:
            lines += ["", _table(title, groups)]
    if summary.session_count > len(summary.sessions):
        lines.append(f"(the {len(summary.sessions)} busiest of {summary.session_count} sessions)")
    if summary.refusals:
        lines += ["", format_refusals(summary.refusals)]
    return "\n".join(lines)


def _table(title: str, groups: list[Group]) -> str:
    cells = [[title] + [name for _, name in _COLUMNS]]
    for g in groups:
        doc = g.as_json()
        row = [g.key[:40]]
        for key, _ in _COLUMNS:
            value = doc[key]
            if key == "error_rate":
                row.append(f"{value * 100:.1f}")
            elif key == "cost_usd":
                row.append(f"{value:.4f}" + ("+" if g.unpriced else ""))
            elif key == "cost_per_hour":
                row.append(f"{value:.4f}")
            else:
                row.append(_num(value))
        cells.append(row)
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
        for r in cells
    )  # fmt: skip


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}"
    return str(value)
