"""`driftgate usage`: requests, tokens, cost and latency per backend and model."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from driftgate.proxy.cli.analytics_db import pg_reads
from driftgate.proxy.config import load_config
from driftgate.proxy.observe.usage_db import open_db, refusals, summarise, usage_db_path

_COLUMNS = (
    ("backend", "BACKEND"),
    ("model", "MODEL"),
    ("requests", "REQS"),
    ("errors", "ERRS"),
    ("input_tokens", "IN"),
    ("output_tokens", "OUT"),
    ("cache_read_tokens", "CACHE_R"),
    ("cache_write_tokens", "CACHE_W"),
    ("cost_usd", "COST_USD"),
    ("avg_latency_ms", "AVG_MS"),
    ("avg_ttfb_ms", "TTFB_MS"),
    ("count_tokens", "COUNT_TOK"),
    ("refused", "REFUSED"),
)


def register(sub: Any) -> None:
    """Attach `driftgate usage`."""
    parser = sub.add_parser(
        "usage",
        help="show recorded usage, cost and latency per backend and model",
        description=(
            "Totals per backend and model from $DRIFTGATE_HOME/usage.sqlite3, which the gateway "
            "writes after each response (or, with [analytics] database_url, from every gateway's "
            "per-minute aggregates in PostgreSQL). Costs use the templates' prices per million tokens; "
            "COST_USD ends in '+' when some requests had no known price. count_tokens calls are "
            "counted in COUNT_TOK, never as requests; requests the spend guard refused are counted in "
            "REFUSED (never as requests or errors), and why is listed under the table."
        ),
    )
    parser.add_argument(
        "--since",
        type=_hours,
        metavar="HOURS",
        help="only the last HOURS hours, e.g. 24 or 0.5 (default: all)",
    )
    parser.add_argument("--json", action="store_true", help="print the rows as a JSON array")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the usage summary."""
    config = load_config(path=Path(args.config) if getattr(args, "config", None) else None)
    since = time.time() - args.since * 3600 if args.since is not None else None
    path = usage_db_path(config.home)
    rows: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    url = config.analytics.database_url
    if url:  # every gateway's per-minute aggregates in PostgreSQL
        rows = pg_reads(url).usage(since)
        if any(r.get("refused") for r in rows):
            refused = pg_reads(url).refusals(since, time.time())
        if not rows and not args.json:
            print(f"no usage recorded in {pg_reads(url).shown}" + (
                f" in the last {args.since:g} hours" if args.since is not None else ""))  # fmt: skip
            return 0
    elif path.exists():
        conn = open_db(path)
        try:
            rows = summarise(conn, since)
            if any(r.get("refused") for r in rows):
                refused = refusals(conn, since)
        finally:
            conn.close()
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(_nothing_to_show(path, args.since))
    else:
        print(format_table(rows))
        if refused:
            print("\n" + format_refusals(refused))
    return 0


def _hours(text: str) -> float:
    try:
        hours = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of hours") from None
    if not hours > 0 or hours == float("inf"):
        raise argparse.ArgumentTypeError(
            f"must be a positive number of hours, got {text} (leave --since out for all usage)"
        )
    return hours


def _nothing_to_show(path: Path, since: float | None) -> str:
    """Why the table is empty: nothing recorded at all, or nothing in the window asked for."""
    total, first = 0, None
    if path.exists():
        conn = open_db(path)
        try:
            total, first = conn.execute("SELECT COUNT(*), MIN(ts) FROM usage").fetchone()
        finally:
            conn.close()
    if not total or since is None:
        return f"no usage recorded yet ({path})"
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(first))
    return (
        f"no usage in the last {since:g} hours; {total} request(s) recorded since {started} "
        "(leave out --since to see them)"
    )


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows as aligned text columns, numbers right-aligned, with a total line."""
    cells = [[title for _, title in _COLUMNS]]
    cells += [[_cell(key, row) for key, _ in _COLUMNS] for row in rows]
    total: dict[str, Any] = {"backend": "TOTAL", "model": ""}
    for key in ("requests", "errors", "input_tokens", "output_tokens", "cache_read_tokens",
                "cache_write_tokens", "count_tokens", "unpriced", "refused"):  # fmt: skip
        total[key] = sum(r.get(key) or 0 for r in rows)
    priced = [r["cost_usd"] for r in rows if r["cost_usd"] is not None]
    total["cost_usd"] = sum(priced) if priced else None
    total["avg_latency_ms"] = total["avg_ttfb_ms"] = None
    cells.append([_cell(key, total) for key, _ in _COLUMNS])
    widths = [max(len(row[i]) for row in cells) for i in range(len(_COLUMNS))]
    lines = []
    for row in cells:
        parts = [
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def format_refusals(refused: list[dict[str, Any]]) -> str:
    """Why requests were refused: one line per outcome, reason and backend, most frequent first."""
    lines = ["refused without forwarding (REFUSED):"]
    for r in refused:
        last = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["last"]))
        lines.append(
            f"  {r['requests']:>6}  {r['backend']}  {r['outcome']}: {r['reason'] or '-'} "
            f"(last {last})"
        )
    return "\n".join(lines)


def _cell(key: str, row: dict[str, Any]) -> str:
    value = row.get(key)
    if key == "cost_usd":
        text = "-" if value is None else f"{value:.4f}"
        return text + "+" if row.get("unpriced") and value is not None else text
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}"
    return str(value)
