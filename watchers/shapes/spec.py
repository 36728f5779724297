"""`driftgate watch shapes` in the watcher catalog: flags, help, schedule, silence threshold."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from driftgate.watchers.catalog import WatcherSpec

HELP = """\
Read the gateway's shape log (what live clients sent: field names and types,
roles, block types, betas, tool names, headers; never content) and notice class
B drift: a client sends something its template does not hold, with no release.

Per client template (claude-code: User-Agent family claude-cli), every fact seen
at least --min-count times that no release declared is proposed under
`observed` in one PR per template (branch driftgate/shapes-TEMPLATE, label
drift:shapes), with counts, first and last seen and client versions. A fact a
release declared is never overwritten. The PR body also lists what the
gateway's translation drops or refuses for each other backend kind.

Each run takes only what the log gained since the last successful run (a
watermark per shape-log file in $DRIFTGATE_HOME/state/shapes.json) and adds it
to the counts taken before, so counts survive the log's cap and a PR not yet
merged. A rerun with no new traffic does nothing (no GitHub call); new traffic
updates the same PR. A failed or --dry-run run does not move the watermark.

The shape log is $DRIFTGATE_HOME/shapes.sqlite3 ([shapes] path), written by a
gateway running under the same DRIFTGATE_HOME; --shapes PATH reads another.
Publishing settings are those of `watch npm`: --repo (or [watch] repo) and
GITHUB_TOKEN; without --repo, or with --dry-run, nothing is published.

Examples:
  driftgate watch shapes --dry-run                  # what a PR would say
  driftgate watch shapes --once --json --min-count 10
  GITHUB_TOKEN=... driftgate watch shapes --once --repo OWNER/NAME

Exit status (the watermark stays unless 0): 0 done; 1 the shape log or a template
could not be read; 2 usage or config error (publishing without --repo or
GITHUB_TOKEN); 6 the state file is unreadable; 8 GitHub refused; 9 rate
limited.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `driftgate watch shapes`."""
    parser.add_argument("--once", action="store_true", help="one pass (it always runs one)")
    parser.add_argument("--dry-run", action="store_true", help="print the PRs; publish nothing")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.add_argument("--min-count", type=int, default=3, metavar="N",
                        help="a fact seen fewer times is left out (default 3)")  # fmt: skip
    parser.add_argument("--shapes", metavar="PATH", help="the shape log to read")
    parser.add_argument(
        "--repo", metavar="OWNER/NAME", help="the GitHub repository OWNER/NAME to open PRs on"
    )
    parser.add_argument(
        "--git-remote",
        metavar="URL|PATH",
        help="git URL to push to (default: the repo's clone URL)",
    )
    parser.add_argument(
        "--github-api-url", metavar="URL", help="GitHub API URL (default api.github.com)"
    )
    parser.add_argument("--workdir", metavar="PATH", help="where the repository is checked out")
    parser.add_argument(
        "--templates", metavar="DIR", help="compare with templates in this directory"
    )


def run(args: argparse.Namespace) -> int:
    """Run `driftgate watch shapes` from parsed arguments."""
    from driftgate.watchers.shapes.command import ShapesFlags, run_watch_shapes

    if args.min_count < 1:
        print("driftgate: --min-count must be at least 1", flush=True)
        return 2
    flags = ShapesFlags(
        shapes=args.shapes, min_count=args.min_count, repo=args.repo, git_remote=args.git_remote,
        github_api_url=args.github_api_url, workdir=args.workdir, templates=args.templates,
        dry_run=args.dry_run,
    )  # fmt: skip
    config_path = Path(args.config) if getattr(args, "config", None) else None
    return run_watch_shapes(flags, config_path=config_path, env=os.environ, as_json=args.json)


SPEC = WatcherSpec(
    name="shapes",
    help="the gateway's shape log -> client template pull requests (class B)",
    description=HELP,
    add_arguments=add_arguments,
    run=run,
    cron="*/30 * * * *",
    max_age_hours=8,
)
