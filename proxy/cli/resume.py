"""`driftgate resume`: lift the spend guard's halt, on the running gateway or in its state file."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx

from driftgate.proxy.config import Config, load_config
from driftgate.proxy.errors import ConfigError
from driftgate.proxy.guard.guard import budget_table
from driftgate.proxy.guard.ledger import guard_db_path, resume_offline
from driftgate.proxy.guard.state import StoreUnreachable, open_guard_state


def register(sub: Any) -> None:
    """Attach `driftgate resume`."""
    parser = sub.add_parser(
        "resume",
        help="lift the spend guard's halt so requests are forwarded again",
        description=(
            "Lift a halt of the spend guard ([guard] in the config). Spend recorded before the "
            "resume stops counting against the budgets, so the next request goes through. It asks "
            "the gateway on --url (default: the configured host and port); when no gateway "
            "answers there, it clears the halt in $DRIFTGATE_HOME/guard.sqlite3 for the next start, "
            "or in Redis ([state] redis_url) for every gateway sharing it."
        ),
    )
    parser.add_argument(
        "--url", metavar="URL", help="the running gateway (default http://HOST:PORT from config)"
    )
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
        if config.state.redis_url and config.guard.enabled:
            return _resume_in_redis(config, url, args.json)
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


def _resume_in_redis(config: Config, url: str, as_json: bool) -> int:
    """No gateway answers here: lift the halt in the Redis every gateway shares."""

    async def resume() -> bool:
        store = open_guard_state(config, budget_table(config.guard), time.time)
        try:
            now = time.time()
            was = await store.halted(now) is not None
            await store.resume(now)
            return was
        finally:
            await store.close()

    try:
        was = asyncio.run(resume())
    except (StoreUnreachable, ConfigError) as exc:
        print(f"driftgate resume: no gateway answers at {url}, and the guard's Redis: {exc}")
        return 1
    if as_json:
        print(json.dumps({"resumed": was, "via": "redis", "gateway": None}))
    elif was:
        print(
            f"resumed: no gateway answers at {url}; the halt is lifted in Redis for every gateway"
        )
    else:
        print(f"no gateway answers at {url} and no halt is recorded in Redis; nothing to do")
    return 0


def _offline_line(was: bool, url: str) -> str:
    where = f"no gateway answers at {url}"
    if was:
        return f"resumed: {where}; the halt is lifted in the state file for its next start"
    return f"{where} and no halt is recorded; nothing to do"
