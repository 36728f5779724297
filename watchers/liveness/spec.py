"""`driftgate watch liveness` in the watcher catalog."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from driftgate.watchers.catalog import WatcherSpec

HELP = """\
Notice a watcher that went quiet. For each installed watcher (npm, canary, and
any other in the catalog) read its last *successful* run, from GitHub Actions
(the runs of .github/workflows/watch-NAME.yml, through the API) or from the
daemon's heartbeat store ($DRIFTGATE_HOME/daemon.sqlite3, --source daemon), and
compare its age with the watcher's threshold (npm 3 h, canary 36 h, shapes 8 h;
[watch.liveness] max_age_hours = {npm = 3}; --max-age NAME=HOURS; 0 turns a
check off).

A stale workflow is first re-dispatched once (workflow_dispatch on the default
branch); if it is still stale at the next liveness run, an alert issue opens
(label drift:liveness, one per watcher). A watcher seen fresh again closes its
alert. A workflow that is not in the repository is reported as not set up.
Anything that cannot be read fails the run and nothing is changed on GitHub.

GitHub delays scheduled runs, drops some, and disables schedules in a
repository with no activity for 60 days: pair liveness with the dead-man's
switch (DRIFTGATE_PING_URL), which notices a liveness run that never happens.

Examples:
  GITHUB_TOKEN=... driftgate watch liveness --once --repo OWNER/NAME
  driftgate watch liveness --source daemon            # on the daemon's host, report only
  driftgate watch liveness --once --repo OWNER/NAME --max-age canary=48 --dry-run

Exit status: 0 every watcher fresh (or just re-dispatched); 1 an alert is open
or the run failed; 2 usage or config error.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `driftgate watch liveness`."""
    parser.add_argument("--once", action="store_true", help="one pass (liveness always runs one)")
    parser.add_argument(
        "--dry-run", action="store_true", help="read and decide; dispatch, alert and close nothing"
    )
    parser.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    parser.add_argument(
        "--source",
        choices=("actions", "daemon"),
        help="where last successes are read (default: [watch.liveness] source, else actions)",
    )
    parser.add_argument(
        "--max-age",
        action="append",
        default=[],
        metavar="NAME=HOURS",
        help="threshold for one watcher (repeatable; 0: do not check it)",
    )
    parser.add_argument(
        "--watcher", action="append", default=[], metavar="NAME", help="check only NAME"
    )
    parser.add_argument("--repo", metavar="OWNER/NAME", help="repository with the workflows")
    parser.add_argument("--github-api-url", metavar="URL", help="GitHub REST API base")
    parser.add_argument("--git-remote", metavar="URL|PATH", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", metavar="PATH", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Run `driftgate watch liveness` from parsed arguments."""
    from driftgate.watchers.liveness.command import LivenessFlags, run_watch_liveness

    flags = LivenessFlags(
        source=args.source,
        max_age=tuple(args.max_age),
        watchers=tuple(args.watcher),
        dry_run=args.dry_run,
        as_json=args.json,
        repo=args.repo,
        github_api_url=args.github_api_url,
        git_remote=args.git_remote,
        workdir=args.workdir,
    )
    config_path = Path(args.config) if getattr(args, "config", None) else None
    return run_watch_liveness(flags, config_path=config_path, env=os.environ)


SPEC = WatcherSpec(
    name="liveness",
    help="watchers gone quiet -> re-dispatch once, then an alert issue",
    description=HELP,
    add_arguments=add_arguments,
    run=run,
    cron="41 */2 * * *",
    max_age_hours=6,
    unattended_args=("--once", "--source", "daemon"),
)
