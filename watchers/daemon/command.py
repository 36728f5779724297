"""`driftgate daemon`: run every watcher on its schedule until SIGTERM; `--list` shows the jobs."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from driftgate.proxy.config import load_config
from driftgate.watchers.catalog import watchers
from driftgate.watchers.daemon.jobs import DaemonSettings, daemon_settings
from driftgate.watchers.daemon.runner import SubprocessRunner
from driftgate.watchers.daemon.scheduler import Daemon
from driftgate.watchers.daemon.stop_signals import StopSignals
from driftgate.watchers.daemon.store import RunStore, store_path

HELP = """\
Run every installed watcher on a schedule, on a machine with no GitHub Actions
(a self-hosted runner host, a server next to the gateway). Each run is
`driftgate watch NAME --once` in a child process, with this process's
environment (GITHUB_TOKEN, ANTHROPIC_API_KEY, DRIFTGATE_PING_URL, ...), so it
does exactly what the workflow does, dead-man's switch pings included.

Schedules default to the workflows' (npm hourly at :17, canary daily 06:23 UTC,
liveness every 2 h reading this daemon's own heartbeats, shapes every 30 min). Per job,
in config.toml:

  [daemon]
  jitter_seconds = 30           # random delay added to each firing
  misfire_grace_seconds = 900   # a firing later than this (machine asleep) is skipped
  stop_grace_seconds = 30       # on SIGTERM, how long a running job may finish

  [daemon.jobs.canary]
  cron = "0 7 * * 1-5"          # or interval_seconds = 3600
  args = ["--backend", "anthropic"]

  [daemon.jobs.npm]
  enabled = false

At most one run of a job at a time (a firing while it runs is skipped and
recorded); missed firings are coalesced into one run. Run history and
heartbeats live in $DRIFTGATE_HOME/daemon.sqlite3. A run's failure is logged
with its output (or traceback) and never stops the daemon. SIGTERM or Ctrl-C:
no new runs; a running job gets stop_grace_seconds to finish, then is stopped
and recorded as abandoned.

Examples:
  driftgate daemon --list          # jobs, schedules, last results, next runs
  driftgate daemon                 # run until SIGTERM (systemd: runbooks/self-hosted.md)
"""


def register(sub: Any) -> None:
    """Attach `driftgate daemon`."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "daemon",
        help="run every watcher on a schedule (no GitHub Actions needed)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--list", action="store_true", help="show each job, its last result and next run; exit"
    )
    parser.add_argument(
        "--run-now",
        action="store_true",
        help="start every enabled job once right away, then keep the schedule",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    config_path = Path(args.config) if getattr(args, "config", None) else None
    if args.list:
        return list_jobs(config_path=config_path, env=os.environ)
    return run_daemon(config_path=config_path, env=os.environ, run_now=args.run_now)


def _settings(config_path: Path | None, env: Mapping[str, str]) -> tuple[DaemonSettings, RunStore]:
    config = load_config(env, config_path)
    settings = daemon_settings(config.daemon, watchers())
    return settings, RunStore(store_path(config.home))


def list_jobs(
    *, config_path: Path | None, env: Mapping[str, str], out: TextIO | None = None
) -> int:
    """Print the jobs: schedule, last result, next run (without jitter)."""
    out = out or sys.stdout
    settings, store = _settings(config_path, env)
    now = datetime.now(UTC)
    rows = [("JOB", "ENABLED", "SCHEDULE", "LAST RESULT", "LAST SUCCESS", "NEXT RUN (UTC)")]
    for job in settings.jobs:
        last = store.last_run(job.name)
        result = "never run"
        if last is not None:
            code = "" if last.exit_code is None else f" (exit {last.exit_code})"
            result = f"{last.status}{code} {last.started_at:%Y-%m-%d %H:%M:%S}"
        success = store.last_success(job.name)
        upcoming = job.trigger(jitter=False).get_next_fire_time(None, now) if job.enabled else None
        rows.append(
            (
                job.name,
                "yes" if job.enabled else "no",
                job.schedule,
                result,
                f"{success:%Y-%m-%d %H:%M:%S}" if success else "never",
                f"{upcoming:%Y-%m-%d %H:%M:%S}" if upcoming else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
    out.write(f"history: {store.path}\n")
    return 0


def run_daemon(*, config_path: Path | None, env: Mapping[str, str], run_now: bool = False) -> int:
    """Schedule every enabled job and run until SIGTERM or SIGINT."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        stream=sys.stderr,
    )
    # Skips and misses are logged once, by the daemon, with what they mean.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    log = logging.getLogger("driftgate.daemon")
    settings, store = _settings(config_path, env)
    daemon = Daemon(settings, SubprocessRunner(config_path=config_path, env=env), store)
    # The handlers only note the signal (no lock, no logging): the main thread acts on it.
    with StopSignals() as signals:
        daemon.start(first_run_now=run_now)
        log.info(
            "driftgate daemon: %d job(s) scheduled; history in %s",
            len(daemon.enabled()),
            store.path,
        )
        signum = signals.wait()
        log.info("%s received: stopping", signal.Signals(signum or signal.SIGTERM).name)
        daemon.stop()
    log.info("driftgate daemon: stopped")
    return 0
