"""`driftgate resume`: lift the spend guard's halt, on the running gateway or in its state file."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import httpx

from driftgate.proxy.config import Config, load_config
from driftgate.proxy.guard.ledger import guard_db_path, resume_offline


def register(sub: Any) -> None:
    """Attach `driftgate resume`."""
    parser = sub.add_parser(
        "resume",
        help="lift the spend guard's halt so requests are forwarded again",
        description=(
            "Lift a halt of the spend guard ([guard] in the config). Spend recorded before the "
            "resume stops counting against the budgets, so the next request goes through. It asks "
            "the gateway on --url (default: the configured host and port); when no gateway "
            "answers there, it clears the halt in $DRIFTGATE_HOME/guard.sqlite3 for the next start."
        ),
    )
    parser.add_argument("--url", help="the running gateway (default http://HOST:PORT from config)")
    parser.add_argument("--json", action="store_true", help="print the guard's state as JSON")
    parser.set_defaults(handler=run)


def gateway_url(config: Config, url: str | None) -> str:
    """--url, else the configured host and port (a wildcard host is asked on loopback)."""
    if url:
        return url.rstrip("/")
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    return f"http://{host}:{config.port}"


def run(args: argparse.Namespace) -> int:
    """Resume through the gateway, else offline; print what happened."""
    config = load_config(path=Path(args.config) if getattr(args, "config", None) else None)
    url = gateway_url(config, args.url)
    headers = {"authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    try:
        resp = httpx.post(f"{url}/guard/resume", headers=headers, timeout=10.0)
    except httpx.TransportError:
        was = resume_offline(guard_db_path(config.home), time.time())
        doc: dict[str, Any] = {"resumed": was, "via": "state file", "gateway": None}
        print(json.dumps(doc) if args.json else _offline_line(was, url))
        return 0
    if resp.status_code != 200:
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = resp.text[:200]
        print(f"driftgate resume: the gateway at {url} answered {resp.status_code}: {message}")
        return 1
    doc = resp.json()
    if args.json:
        print(json.dumps(doc))
    elif doc.get("resumed"):
        print(f"resumed: the gateway at {url} forwards requests again (earlier spend forgotten)")
    else:
        print(f"the gateway at {url} was not halted; spend so far no longer counts")
    return 0


def _offline_line(was: bool, url: str) -> str:
    where = f"no gateway answers at {url}"
    if was:
        return f"resumed: {where}; the halt is lifted in the state file for its next start"
    return f"{where} and no halt is recorded; nothing to do"
