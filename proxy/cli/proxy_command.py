"""`driftgate proxy`: run the gateway in the foreground."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from driftgate.proxy.config import Config, load_config

EPILOG = """examples:
  driftgate proxy                          # http://127.0.0.1:3456, backends from config or ANTHROPIC_API_KEY/OPENAI_API_KEY
  driftgate proxy --port 8080 --log-level debug
  DRIFTGATE_API_KEY=... driftgate proxy --host 0.0.0.0   # beyond loopback a gateway key is required

Point clients at it: ANTHROPIC_BASE_URL=http://127.0.0.1:3456, OPENAI_BASE_URL=http://127.0.0.1:3456/v1.
Precedence: flags > environment (DRIFTGATE_HOST, DRIFTGATE_PORT, DRIFTGATE_LOG_LEVEL,
DRIFTGATE_TEMPLATES_DIR) > config file ([gateway] host, port, log_level, templates_dir)."""


def register(sub: Any) -> None:
    """Attach `driftgate proxy` to the root parser."""
    p: argparse.ArgumentParser = sub.add_parser(
        "proxy",
        help="run the gateway (Anthropic Messages + OpenAI Chat Completions on one port)",
        description="Run the gateway in the foreground until Ctrl-C.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--host",
        help="address to bind (default 127.0.0.1, env DRIFTGATE_HOST; anything else needs "
        "DRIFTGATE_API_KEY)",
    )
    p.add_argument(
        "--port",
        type=int,
        help="port to listen on (default 3456, env DRIFTGATE_PORT; 0 = any free)",
    )
    p.add_argument(
        "--templates-dir",
        metavar="DIR",
        help="overlay directory of approved templates, reloaded on change (env DRIFTGATE_TEMPLATES_DIR)",
    )
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="log level (default info: one line per request; env DRIFTGATE_LOG_LEVEL)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Load the config, apply the flags, serve."""
    from driftgate.proxy.server import run_forever  # the server stack loads only for this command

    run_forever(config_for(args, os.environ))
    return 0


def config_for(args: argparse.Namespace, env: Mapping[str, str]) -> Config:
    """The file, then the environment (DRIFTGATE_*), then these flags: each wins over the last."""
    config = load_config(env, Path(args.config) if args.config else None)
    return config.with_overrides(
        host=args.host,
        port=args.port,
        templates_dir=Path(args.templates_dir).expanduser() if args.templates_dir else None,
        log_level=args.log_level,
    )
