"""`driftgate watch npm` in the watcher catalog: its flags, its help, how it runs unattended."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from driftgate.watchers.catalog import WatcherSpec

WATCH_NPM_HELP = """\
Notice a new release of a watched npm package, rebake the template it feeds
(models, betas, API version, a client's tools), and open or update one pull
request per template through the GitHub API.

Each pass, per package: ask the registry for the package's dist-tags (a few
hundred bytes); when the watched tag (default `latest`) points at the version
the template was baked from, stop there. Otherwise fetch that version's
metadata and tarball, verify its sha512 integrity, read it in memory, extract
the facts, rebake the template (curated fields such as prices survive; new
models arrive with `needs_review: true`), validate it, diff it against the
approved template, and:

  - nothing changed at all        -> nothing is sent anywhere
  - only `source` moved (trivial) -> recorded, folded into the next PR
                                     (`--on-trivial pr` opens a PR instead)
  - additions                     -> PR labelled drift, drift:npm
  - removals (model/beta/tool)    -> PR also labelled breaking

One package's failure is reported and the others go on; the exit status is
then non-zero with a one-line reason, and no PR is touched for that package.

Defaults watched: @anthropic-ai/sdk -> anthropic.json, openai -> openai.json,
@anthropic-ai/claude-code -> claude-code.json. Configure in config.toml:

  [watch]
  registry = "https://registry.npmjs.org/"   # else npm_config_registry, ~/.npmrc
  repo = "OWNER/NAME"
  on_trivial = "record"                      # or "pr"
  auto_merge = "off"                         # or "additive"
  packages = [{name = "openai", template = "openai", tags = ["latest"]}]

Environment: GITHUB_TOKEN (needed to publish; never written to disk or a URL),
DRIFTGATE_HOME (state, cache and work directory; default ~/.driftgate),
GITHUB_RUN_ID/GITHUB_SERVER_URL/GITHUB_REPOSITORY (link the Actions run).

Examples:
  # See what would happen, with no token and no config (public registry):
  driftgate watch npm --once --dry-run

  # The same, machine-readable, for one package:
  driftgate watch npm --once --dry-run --json --package openai

  # What the hourly GitHub Actions job runs:
  GITHUB_TOKEN=... driftgate watch npm --once --repo OWNER/NAME

  # Self-hosted: run every 30 minutes until Ctrl-C:
  GITHUB_TOKEN=... driftgate watch npm --repo OWNER/NAME --interval 30

Exit status: 0 all packages went through; 2 bad flags or config; otherwise the
code of the first failure (3 registry, 4 integrity/unsafe tarball, 5 extraction,
6 state, 7 secret gate, 8 GitHub/git, 9 rate limit).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `driftgate watch npm`."""
    parser.add_argument(
        "--package",
        action="append",
        default=[],
        metavar="NAME",
        help="watch only NAME (repeatable; default: config, else the three defaults)",
    )
    parser.add_argument(
        "--tag", metavar="TAG", help="dist-tag compared with the template (default: latest)"
    )
    parser.add_argument(
        "--once", action="store_true", help="run one pass and exit (default: run every --interval)"
    )
    parser.add_argument(
        "--interval",
        type=float,
        metavar="MINUTES",
        help="minutes between passes without --once (default: 60)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the PR it would open (title, labels, body); push, record and change nothing",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a machine-readable report: versions compared, facts, decision, PR",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=None,
        help="print progress to stderr (the default when stderr is a terminal)",
    )
    parser.add_argument(
        "--repo",
        metavar="OWNER/NAME",
        help="repository that receives the PRs (default: [watch] repo)",
    )
    parser.add_argument(
        "--git-remote",
        metavar="URL|PATH",
        help="git remote to clone and push (default: the repo on the GitHub server)",
    )
    parser.add_argument(
        "--workdir",
        metavar="PATH",
        help="where the repository is cloned (default: $DRIFTGATE_HOME/work)",
    )
    parser.add_argument(
        "--github-api-url", metavar="URL", help="GitHub REST API (Enterprise: https://HOST/api/v3)"
    )
    parser.add_argument(
        "--registry",
        metavar="URL",
        help="npm registry (default: [watch] registry, npm_config_registry, ~/.npmrc, npmjs)",
    )
    parser.add_argument(
        "--templates",
        metavar="DIR",
        help="compare with the templates in DIR (default: the --repo default branch, "
        "else the bundled ones)",
    )
    parser.add_argument(
        "--on-trivial",
        choices=("record", "pr"),
        help="a release that changes no fact: record and fold (default) or open a PR",
    )
    parser.add_argument(
        "--auto-merge",
        choices=("off", "additive"),
        help="enable GitHub auto-merge on additive (never breaking) PRs",
    )
    parser.add_argument(
        "--compat",
        action="store_true",
        help="run each new client release through the gateway (driftgate compat run) and put "
        "the report in its drift PR",
    )


def run(args: argparse.Namespace) -> int:
    """Run `driftgate watch npm` from parsed arguments."""
    from driftgate.watchers.npm.command import run_watch_npm
    from driftgate.watchers.npm.settings import WatchFlags

    flags = WatchFlags(
        packages=tuple(args.package),
        tag=args.tag,
        registry=args.registry,
        repo=args.repo,
        git_remote=args.git_remote,
        github_api_url=args.github_api_url,
        workdir=args.workdir,
        templates=args.templates,
        on_trivial=args.on_trivial,
        auto_merge=args.auto_merge,
        interval=args.interval,
        compat=args.compat,
    )
    config_path = Path(args.config) if getattr(args, "config", None) else None
    return run_watch_npm(
        flags,
        config_path=config_path,
        env=os.environ,
        once=args.once,
        dry_run=args.dry_run,
        as_json=args.json,
        verbose=args.verbose,
    )


SPEC = WatcherSpec(
    name="npm",
    help="new npm releases -> rebaked templates -> pull requests",
    description=WATCH_NPM_HELP,
    add_arguments=add_arguments,
    run=run,
    cron="17 * * * *",
    max_age_hours=3,
)
