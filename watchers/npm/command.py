"""`driftgate watch npm`: wire config, registry, templates and publisher together; one pass or a loop."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TextIO

import httpx

from driftgate.proxy.config import load_config
from driftgate.proxy.errors import ConfigError, DriftgateError
from driftgate.watchers.extractors import Extractor, default_watched, extractors
from driftgate.watchers.github import (
    MIN_WRITE_INTERVAL,
    actions_run_url,
    api_errors,
    build_github,
    server_url_for,
)
from driftgate.watchers.npm.registry import NpmRegistry
from driftgate.watchers.npm.registry_url import resolve_registry_url
from driftgate.watchers.npm.settings import WatchConfig, WatchFlags, resolve
from driftgate.watchers.npm.watch import NpmWatcher, Publishing, WatchSettings
from driftgate.watchers.prplan import runbook_url
from driftgate.watchers.publish import Publisher
from driftgate.watchers.report import RunReport, render_text, report_json
from driftgate.watchers.state import WatchState, state_path
from driftgate.watchers.template_sources import DirectoryTemplates, RepoTemplates, TemplateSource

REGISTRY_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def _user_agent() -> str:
    try:
        release = version("driftgate")
    except PackageNotFoundError:  # a checkout run without `pip install -e .`
        release = "dev"
    return f"driftgate/{release} (+watch npm)"


def check_can_publish(wc: WatchConfig, *, token: str | None, dry_run: bool) -> None:
    """ConfigError saying what is missing when a publishing run lacks a repository or a token."""
    if dry_run:
        return
    if wc.repo is None:
        raise ConfigError(
            "publishing needs the target repository: --repo OWNER/NAME or [watch] repo "
            "(or preview with --dry-run)"
        )
    if not token:
        raise ConfigError(
            "publishing needs GITHUB_TOKEN in the environment (or preview with --dry-run)"
        )


def _sources(
    wc: WatchConfig,
    *,
    token: str | None,
    dry_run: bool,
    sleep: Callable[[float], None],
    min_write_interval: float,
) -> tuple[TemplateSource, Publishing | None]:
    """The approved templates to compare with, and the publisher (None in a dry run)."""
    if wc.repo is None:
        return DirectoryTemplates(wc.templates) if wc.templates else DirectoryTemplates(), None
    gh = build_github(token, wc.github_api_url, sleep=sleep, min_write_interval=min_write_interval)
    publisher = Publisher(
        repo=wc.repo, remote=wc.git_remote, workdir=wc.workdir, github=gh, token=token, sleep=sleep
    )

    def default_branch() -> str:
        with api_errors("reading the repository's default branch"):
            return str(publisher.repository().default_branch)

    if wc.templates:
        templates: TemplateSource = DirectoryTemplates(wc.templates)
    else:
        templates = RepoTemplates(publisher.checkout, default_branch)
    return templates, None if dry_run else publisher


def one_pass(
    wc: WatchConfig,
    *,
    home: Path,
    env: Mapping[str, str],
    token: str | None,
    dry_run: bool,
    found_extractors: Mapping[str, Extractor],
    sleep: Callable[[float], None] = time.sleep,
    min_write_interval: float = MIN_WRITE_INTERVAL,
    shape_log: Path,
    progress: Callable[[str], None] | None = None,
) -> RunReport:
    """Build fresh clients, check every watched package once, return the report.

    `shape_log` is the file compat runs write their shapes to: the configured one ([shapes] path,
    else under DRIFTGATE_HOME), the same that `watch shapes` reads."""
    # The caller ran check_can_publish once, before the first pass: its inputs never change.
    templates, publisher = _sources(
        wc, token=token, dry_run=dry_run, sleep=sleep, min_write_interval=min_write_interval
    )
    server = server_url_for(wc.github_api_url) if wc.repo else None
    settings = WatchSettings(
        dry_run=dry_run,
        on_trivial=wc.on_trivial,
        auto_merge=wc.auto_merge,
        run_url=actions_run_url(env),
        runbook=runbook_url(server, wc.repo),
    )
    registry_url = resolve_registry_url(wc.registry, env)
    headers = {"User-Agent": _user_agent()}
    with httpx.Client(timeout=REGISTRY_TIMEOUT, headers=headers) as client:
        registry = NpmRegistry(
            registry_url, client=client, cache_dir=home / "cache" / "npm", sleep=sleep
        )
        watcher = NpmWatcher(
            registry=registry,
            extractors=found_extractors,
            templates=templates,
            state=WatchState.load(state_path(home)),
            settings=settings,
            publisher=publisher,
            progress=progress,
            compat=_compat(registry_url, shape_log) if wc.compat else None,
        )
        return watcher.run(wc.packages)


def _compat(registry_url: str, shape_log: Path) -> Callable[[str, str], str]:
    """A compat run of (package, version) as the drift PR's Markdown section."""
    from driftgate.watchers.compat.run import compat_run, render_markdown

    def run(package: str, version: str) -> str:
        report = compat_run(f"{package}@{version}", registry_url, shape_log)
        return render_markdown(report)

    return run


def emit(report: RunReport, *, as_json: bool, out: TextIO, err: TextIO) -> int:
    """Print the report (JSON or text) and the one-line reason on failure; return the exit status."""
    if as_json:
        out.write(json.dumps(report_json(report), indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(render_text(report, show_body=report.dry_run))
    out.flush()
    reason = report.reason()
    if reason:
        print(f"driftgate: {reason}", file=err)
    return report.exit_code


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _printer(err: TextIO) -> Callable[[str], None]:
    """A progress callback writing `driftgate: ...` lines to `err` as they happen."""

    def say(message: str) -> None:
        print(f"driftgate: {message}", file=err, flush=True)

    return say


STOP_POLL_SECONDS = 0.5


def run_forever(
    job: Callable[[], object],
    interval_minutes: float,
    *,
    err: TextIO,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Run `job` now and every `interval_minutes` until Ctrl-C or SIGTERM; then stop cleanly."""
    from apscheduler.schedulers.background import BackgroundScheduler

    # Ctrl-C and SIGTERM only leave a note: raising KeyboardInterrupt wherever the main thread is
    # (inside the scheduler, holding its locks) or taking a lock in a handler can wedge the stop.
    requested: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        requested.append(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(
        job,
        "interval",
        minutes=interval_minutes,
        next_run_time=now(),
        max_instances=1,
        coalesce=True,
        # APScheduler skips a run that starts more than misfire_grace_time (default 1 s) late;
        # on a loaded machine the first pass started that late and was skipped.
        misfire_grace_time=None,
        id="watch-npm",
    )
    print(
        f"driftgate watch npm: every {interval_minutes:g} min; Ctrl-C to stop", file=err, flush=True
    )
    try:
        scheduler.start()
        while not requested:
            time.sleep(STOP_POLL_SECONDS)  # a signal taken by another thread is seen here too
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)  # a running pass still finishes before the exit
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("driftgate watch npm: stopped", file=err, flush=True)
    return 0


def run_watch_npm(
    flags: WatchFlags,
    *,
    config_path: Path | None,
    env: Mapping[str, str],
    once: bool,
    dry_run: bool,
    as_json: bool,
    out: TextIO | None = None,
    err: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
    min_write_interval: float = MIN_WRITE_INTERVAL,
    verbose: bool | None = None,
) -> int:
    """The `driftgate watch npm` command: resolve settings, then one pass (`--once`) or the loop."""
    out, err = out or sys.stdout, err or sys.stderr
    # Progress goes to stderr at a terminal (or with --verbose); logs keep the one-line reason only.
    show_progress = verbose if verbose is not None else _is_terminal(err)
    progress = _printer(err) if show_progress else None
    config = load_config(env, config_path)
    # Entry points are scanned (and plugins built) once per run, not once per pass.
    found_extractors = extractors()
    wc = resolve(
        config.watch,
        flags,
        home=config.home,
        extractors=found_extractors,
        defaults=default_watched(),
    )
    token = env.get("GITHUB_TOKEN") or None

    # Checked before the loop starts, so a daemon never starts only to fail every hour.
    check_can_publish(wc, token=token, dry_run=dry_run)

    def job() -> int:
        try:
            report = one_pass(
                wc,
                home=config.home,
                env=env,
                token=token,
                dry_run=dry_run,
                found_extractors=found_extractors,
                sleep=sleep,
                min_write_interval=min_write_interval,
                progress=progress,
                shape_log=config.shapes.file(config.home),
            )
        except DriftgateError as exc:
            print(f"driftgate: {exc}", file=err, flush=True)
            return int(getattr(exc, "exit_code", 2))
        return emit(report, as_json=as_json, out=out, err=err)

    if once:
        return job()

    def guarded() -> None:
        try:
            job()
        except Exception as exc:  # the loop outlives one bad pass; the next one tries again
            print(
                f"driftgate: watch pass failed: {type(exc).__name__}: {exc}", file=err, flush=True
            )

    return run_forever(guarded, wc.interval_minutes, err=err)
