"""The checks behind `driftgate doctor`: each returns findings, none prints, none raises.

A finding is ok, warn (works, but worth knowing) or fail (something a user must fix), with a
sentence saying what to do. Keys are never part of a finding: only variable names and states.
"""

from __future__ import annotations

import asyncio
import platform
import socket
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import httpx

from driftgate.proxy import __version__
from driftgate.proxy.auth import anthropic_version, backend_auth
from driftgate.proxy.cli.analytics_db import pg_reads
from driftgate.proxy.config import Config
from driftgate.proxy.errors import ConfigError, DriftgateError
from driftgate.proxy.guard.guard import budget_table
from driftgate.proxy.guard.ledger import Halt, SqliteGuardStore, guard_db_path
from driftgate.proxy.guard.settings import redact_url
from driftgate.proxy.guard.state import StoreUnreachable
from driftgate.proxy.observe.pg.url import redact_url as redact_database_url
from driftgate.proxy.observe.probe import AUTH_FAILED, OK, SKIPPED, Prober
from driftgate.proxy.observe.usage_db import usage_db_path
from driftgate.proxy.serve.cores import usable_cores_and_quota
from driftgate.proxy.shared.redis_eviction import FIX as EVICTION_FIX
from driftgate.proxy.templates.loader import (
    TemplateSet,
    load_bundled,
    load_template_file,
    template_files,
)
from driftgate.proxy.upstream.proxies import ProxyChooser
from driftgate.proxy.upstream.settings import settings_for, tls_context

Level = Literal["ok", "warn", "fail"]
DEFAULT_GITHUB_API = "https://api.github.com"
STALE_HEARTBEAT_HOURS = 36.0


@dataclass(frozen=True)
class Finding:
    """One line of the report."""

    section: str
    level: Level
    text: str
    fix: str = ""


def versions() -> list[Finding]:
    """driftgate, Python and the libraries on the request path."""
    libs = []
    for name in ("aiohttp", "httptools", "orjson", "prometheus_client"):
        try:
            libs.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            libs.append(f"{name} missing")
    text = (
        f"driftgate {__version__}, Python {platform.python_version()} on "
        f"{platform.system()} {platform.machine()}; {', '.join(libs)}"
    )
    return [Finding("versions", "ok", text)]


def templates(config: Config) -> tuple[list[Finding], TemplateSet]:
    """The bundled templates, and the overlay directory's, each validated against its schema."""
    bundled = load_bundled()
    out = [
        Finding("templates", "ok", f"bundled {name}: {t.hash[:19]}…")
        for name, t in sorted(bundled.templates.items())
    ]
    directory = config.templates_dir
    if directory is None:
        return out, bundled
    if not directory.is_dir():
        fix = "create it, or remove templates_dir from the config"
        out.append(Finding("templates", "fail", f"overlay {directory} is not a directory", fix))
        return out, bundled
    for path in template_files(directory):
        try:
            t = load_template_file(path)
        except DriftgateError as exc:
            fix = "fix the file or take it out; the gateway keeps the last good set"
            out.append(Finding("templates", "fail", f"overlay {path.name}: {exc}", fix))
            continue
        out.append(Finding("templates", "ok", f"overlay {t.name}: {t.hash[:19]}… ({path})"))
    return out, bundled


def backends(config: Config, env: Mapping[str, str], templates: TemplateSet) -> list[Finding]:
    """Each backend's key is set and its API answers with it (one GET of its model list)."""
    if not config.backends:
        fix = "add one: driftgate backend add NAME --kind anthropic|openai --key-env VAR"
        return [Finding("backends", "warn", "no backend is configured", fix)]
    out: list[Finding] = []
    auths = {}
    unset: dict[str, str] = {}  # backend -> the key variable that is not set
    for b in config.backends:
        try:
            auths[b.name] = backend_auth(b, env)
        except DriftgateError as exc:
            out.append(Finding("backends", "fail", f"{b.name}: {exc}", "fix the key's value"))
            continue
        if b.auth != "passthrough" and not b.key and b.key_env and not env.get(b.key_env):
            fix = f"export {b.key_env}=... in the gateway's environment"
            out.append(Finding("backends", "fail", f"{b.name}: ${b.key_env} is not set", fix))
            unset[b.name] = b.key_env
    prober = Prober(
        auths,
        lambda: anthropic_version(templates),
        tls=lambda b: tls_context(settings_for(b, config.proxies)),
        proxies=ProxyChooser(config.proxies),
    )
    for result in asyncio.run(prober.probe()):
        name, state = result["name"], result["state"]
        where = result.get("url", "")
        if state == OK:
            ms = result.get("latency_ms")
            out.append(Finding("backends", "ok", f"{name}: reachable and key accepted ({ms} ms)"))
        elif state == SKIPPED:
            out.append(Finding("backends", "ok", f"{name}: {result.get('message', 'skipped')}"))
        elif state == AUTH_FAILED and name in unset:
            # No key was sent: the refusal is the unset variable's failure above, not a bad key.
            text = f"{name}: {where} answers (it asks for the key ${unset[name]} will hold)"
            out.append(Finding("backends", "ok", text))
        elif state == AUTH_FAILED:
            fix = "check the key (a new one, or the right variable) and its permissions"
            out.append(Finding("backends", "fail", f"{name}: {where} refused the key", fix))
        else:
            fix = "check base_url, the network, and HTTPS_PROXY/NO_PROXY if you use a proxy"
            detail = result.get("message", state)
            out.append(Finding("backends", "fail", f"{name}: {where}: {detail}", fix))
    return out


def port(config: Config) -> list[Finding]:
    """The gateway's port is free, or a driftgate gateway already answers on it."""
    host = config.host
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, config.port))
        except OSError:
            pass
        else:
            return [Finding("port", "ok", f"{host}:{config.port} is free")]
    try:
        doc = httpx.get(f"http://{host}:{config.port}/health", timeout=3).json()
    except (httpx.HTTPError, ValueError):
        doc = None
    if isinstance(doc, dict) and "templates" in doc:
        state = doc.get("status", "?")
        return [
            Finding("port", "ok", f"a driftgate gateway answers on {host}:{config.port} ({state})")
        ]
    fix = "stop that program, or run the gateway with --port N (or DRIFTGATE_PORT)"
    return [Finding("port", "fail", f"{host}:{config.port} is taken by another program", fix)]


def workers(config: Config) -> list[Finding]:
    """How many processes `driftgate proxy` starts, against the cores this process may use."""
    count, (cores, quota) = config.worker_processes, usable_cores_and_quota()
    where = f"{cores} usable core{'' if cores == 1 else 's'}"
    if quota is not None:
        where += f" (CPU affinity capped by a cgroup quota of {quota:g} CPUs)"
    if count == 1:
        return [Finding("workers", "ok", f"one process; {where}")]
    said = f"{count} worker processes{' (auto)' if config.workers == 'auto' else ''}; {where}"
    if count > cores:
        fix = f'workers = "auto" (one per usable core) or a number up to {cores}'
        return [Finding("workers", "warn", said + ": more workers than cores take turns on "
                        "them and cost more CPU a request", fix)]  # fmt: skip
    return [Finding("workers", "ok", said)]


def recorder(config: Config) -> list[Finding]:
    """The usage database opens and is intact (PostgreSQL: answers, migrated)."""
    if config.analytics.enabled and config.analytics.database_url:
        return analytics_database(config.analytics.database_url)
    path = usage_db_path(config.home)
    if not path.exists():
        return [Finding("recorder", "ok", f"{path} does not exist yet (no request recorded)")]
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            rows = db.execute("SELECT count(*) FROM usage").fetchone()[0]
    except sqlite3.Error as exc:
        fix = f"move {path} aside; the gateway starts a new one"
        return [Finding("recorder", "fail", f"{path} cannot be read: {exc}", fix)]
    if check != "ok":
        fix = f"move {path} aside; the gateway starts a new one"
        return [Finding("recorder", "fail", f"{path} is damaged: {check}", fix)]
    size = path.stat().st_size / 1e6
    return [Finding("recorder", "ok", f"{path}: {rows} records, {size:.1f} MB")]


def analytics_database(url: str) -> list[Finding]:
    """PostgreSQL analytics: reachable, migrated, partitions there (the URL shown redacted)."""
    shown = redact_database_url(url)
    try:
        found = pg_reads(url).facts()
    except ConfigError as exc:
        fix = ("pip install 'driftgate[postgres]'" if "not installed" in str(exc) else
               "start PostgreSQL, or fix the user, password, host or database in database_url")  # fmt: skip
        return [Finding("recorder", "fail", str(exc), fix)]
    if not found["schema"]:
        return [Finding("recorder", "ok", f"{shown} answers; not migrated yet (the gateway "
                        "migrates it at start-up)")]  # fmt: skip
    if "partitions" not in found:
        return [Finding("recorder", "ok", f"{shown} answers (schema {found['schema']})")]
    return [Finding("recorder", "ok", f"{shown}: schema {found['schema']}, "
                    f"{found['partitions']} daily partitions (the oldest for {found['oldest']}), "
                    f"{found['last_hour']} requests in the last hour")]  # fmt: skip


def guard(config: Config, now: float | None = None) -> list[Finding]:
    """Whether the spend guard is on, and halted (from its state file)."""
    if not config.guard.enabled:
        return [Finding("guard", "ok", "off (no [guard] budget or header rule)")]
    if config.state.redis_url:
        return shared_guard(config, time.time() if now is None else now)
    path = guard_db_path(config.home)
    if not path.exists():
        return [Finding("guard", "ok", f"on ({config.guard.action}); nothing spent yet")]
    store = SqliteGuardStore(path)
    try:
        halt = store.halted(time.time() if now is None else now)
    finally:
        store.close()
    if halt is not None:
        return [Finding("guard", "warn", f"halted: {halt.reason}", "driftgate resume")]
    return [Finding("guard", "ok", f"on ({config.guard.action}), not halted")]


def shared_guard(config: Config, now: float) -> list[Finding]:
    """The guard's Redis ([state] redis_url): installed, answering, which version, halted."""
    assert config.state.redis_url is not None
    url = redact_url(config.state.redis_url)
    try:
        from driftgate.proxy.guard.redis_store import FAILURES, RedisGuardStore
    except ImportError:
        fix = "pip install 'driftgate[redis]', or remove [state] redis_url"
        return [
            Finding("guard", "fail", "[state] redis_url is set but redis is not installed", fix)
        ]
    # A person waits for this answer: a slower Redis than the request path allows still answers.
    state = replace(config.state, timeout_seconds=max(config.state.timeout_seconds, 2.0))

    async def ask() -> tuple[str, Halt | None, str | None]:
        store = RedisGuardStore(state, budget_table(config.guard))
        try:
            info = await store.redis.info("server")
            halt = await store.halted(now)
            return str(info.get("redis_version", "?")), halt, await store.eviction_now()
        finally:
            await store.close()

    try:
        version, halt, evicts = asyncio.run(ask())
    except (StoreUnreachable, *FAILURES) as exc:
        meanwhile = (
            "requests go through unguarded (fail = open)"
            if config.state.fail == "open"
            else "completions are refused with a 503 (fail = closed)"
        )
        fix = f"start Redis at {url} or correct [state] redis_url; until it answers, {meanwhile}"
        return [Finding("guard", "fail", f"Redis at {url} does not answer ({exc})", fix)]
    said = (
        f"on ({config.guard.action}), shared in Redis {version} at {url}, fail {config.state.fail}"
    )
    found = [Finding("guard", "ok", said + ("" if halt is not None else ", not halted"))]
    if halt is not None:
        found.append(Finding("guard", "warn", f"halted: {halt.reason}", "driftgate resume"))
    if evicts is not None:
        found.append(Finding("guard", "warn", evicts, EVICTION_FIX))
    return found


def daemon(home: Path, now: datetime | None = None) -> list[Finding]:
    """How long ago each daemon job last succeeded (from the daemon's heartbeats)."""
    path = home / "daemon.sqlite3"
    if not path.exists():
        return [Finding("daemon", "ok", "no daemon heartbeats (the daemon has not run here)")]
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            rows = db.execute(
                "SELECT job, last_status, last_success_at FROM heartbeats ORDER BY job"
            ).fetchall()
    except sqlite3.Error as exc:
        return [Finding("daemon", "fail", f"{path} cannot be read: {exc}", f"move {path} aside")]
    now = now or datetime.now(UTC)
    out: list[Finding] = []
    for job, status, success in rows:
        if not success:
            out.append(Finding("daemon", "warn", f"{job}: never succeeded (last: {status})",
                               f"driftgate daemon --list; run it by hand: driftgate watch {job}"))  # fmt: skip
            continue
        when = datetime.fromisoformat(str(success))
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        hours = (now - when).total_seconds() / 3600
        level: Level = "warn" if hours > STALE_HEARTBEAT_HOURS else "ok"
        fix = "driftgate daemon --list shows its last runs" if level == "warn" else ""
        out.append(Finding("daemon", level, f"{job}: last success {hours:.1f} h ago", fix))
    return out or [Finding("daemon", "ok", "the daemon has run no job yet")]


def github(env: Mapping[str, str], watch: Mapping[str, Any]) -> list[Finding]:
    """With a GitHub token set: it is accepted, what it may do on the configured repository."""
    token = env.get("GITHUB_TOKEN") or env.get("GH_TOKEN")
    if not token:
        return [Finding("github", "ok", "no GITHUB_TOKEN set (needed only by the watchers)")]
    api = str(watch.get("github_api_url") or DEFAULT_GITHUB_API).rstrip("/")
    repo = watch.get("repo")
    url = f"{api}/repos/{repo}" if repo else f"{api}/rate_limit"
    headers = {"authorization": f"Bearer {token}", "accept": "application/vnd.github+json"}
    try:
        resp = httpx.get(url, headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        fix = "check the network and [watch] github_api_url"
        return [Finding("github", "fail", f"{api} cannot be reached ({type(exc).__name__})", fix)]
    if resp.status_code == 401:
        fix = "the token is wrong or expired: make a new one"
        return [Finding("github", "fail", f"{api} refused GITHUB_TOKEN (401)", fix)]
    if resp.status_code == 404 and repo:
        fix = "check [watch] repo, and that the token may read it"
        return [Finding("github", "fail", f"{repo} is not visible with this token", fix)]
    scopes = resp.headers.get("x-oauth-scopes")
    listed = (
        f"scopes: {scopes}" if scopes is not None else "scopes not listed (fine-grained or App)"
    )
    out = [Finding("github", "ok", f"GITHUB_TOKEN accepted by {api}; {listed}")]
    if repo and resp.status_code == 200:
        perms = resp.json().get("permissions") or {}
        if perms.get("push"):
            out.append(Finding("github", "ok", f"the token may push to {repo}"))
        else:
            fix = "give the token contents: write and pull-requests: write on the repository"
            out.append(Finding("github", "warn", f"the token cannot push to {repo}", fix))
    return out
