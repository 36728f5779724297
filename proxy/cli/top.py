"""`driftgate top`: a live terminal view of a running gateway (Textual, loaded only here)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from driftgate.proxy.cli.resume import gateway_url
from driftgate.proxy.config import load_config
from driftgate.proxy.errors import ConfigError
from driftgate.proxy.observe.summary import BadWindow, parse_window

DESCRIPTION = """\
A live view of a running gateway in the terminal, read from its HTTP endpoints only
(/health, /analytics, /analytics/stream, POST /guard/resume): nothing is read from disk.

Tabs:
  1 Status     health, templates and their hashes, the spend guard (why it halted)
  2 Analytics  cost and tokens per model, burn rate per hour, rate-limit utilisation
  3 Hits       every request as it finishes; enter or the arrows show one request's
               metadata (tokens, cost, timing, rate-limit headers; never its content)
  4 Backends   each backend's state, cooldown, recent error rate; p probes them all

Keys: 1-4 tabs, r resume the spend guard, w change the analytics window, p probe the
backends (a free model-list request each), q quit.

A gateway that is not running, or stops, is shown as NOT REACHABLE and asked again every
--interval seconds until it answers. The gateway key, DRIFTGATE_API_KEY, when set, is sent.
"""


def register(sub: Any) -> None:
    """Attach `driftgate top`."""
    parser = sub.add_parser(
        "top",
        help="a live terminal view of a running gateway: status, analytics, hits, backends",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url", metavar="URL", help="the running gateway (default http://HOST:PORT from config)"
    )
    parser.add_argument(
        "--window",
        default="60m",
        metavar="WINDOW",
        help="analytics window: 15m, 60m, 24h, 7d... (default 60m)",
    )
    parser.add_argument(
        "--interval",
        metavar="SECONDS",
        type=float,
        default=2.0,
        help="seconds between refreshes, and between retries when no gateway answers (default 2)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Open the view; returns when the user quits."""
    config = load_config(path=Path(args.config) if getattr(args, "config", None) else None)
    try:
        parse_window(args.window)
    except BadWindow as exc:
        raise ConfigError(f"--window: {exc}") from None
    if args.interval <= 0:
        raise ConfigError(f"--interval must be a positive number of seconds, got {args.interval}")
    try:  # Textual is loaded here, never by the gateway
        from driftgate.proxy.top.app import TopApp
        from driftgate.proxy.top.client import GatewayClient
    except ImportError as exc:
        raise ConfigError(
            f"driftgate top needs Textual ({exc}); install it with: pip install 'textual>=8'"
        ) from None
    client = GatewayClient(gateway_url(config, args.url), config.api_key)
    TopApp(client, window=args.window, interval=args.interval).run()
    return 0
