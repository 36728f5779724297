"""`driftgate watch ...` and `driftgate template ...`: argument parsing and help; the work lives elsewhere."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

WATCH_HELP = """\
Watch upstream packages and turn each change into one reviewable pull request.

Watchers:
  npm    new releases of npm packages (SDKs, CLIs) that feed driftgate's templates

Run `driftgate watch npm --help` for the details.
"""

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

TEMPLATE_HELP = """\
Check and compare driftgate templates (the JSON documents under proxy/templates/).

Examples:
  driftgate template validate                      # the bundled templates
  driftgate template validate proxy/templates      # a checkout's templates (the compat gate)
  driftgate template diff old/anthropic.json proxy/templates/anthropic.json
"""

VALIDATE_HELP = """\
Validate templates against their JSON Schemas. PATH may be a template file or a
directory (its *.json files except *.schema.json). With no PATH, the templates
bundled with this installation are checked. Exit status 1 when any fails.

Example:
  driftgate template validate proxy/templates/anthropic.json
"""

DIFF_HELP = """\
Print the Markdown a drift PR carries for OLD -> NEW: severity and summary, a
table of structural changes (added/removed/changed paths with old and new
values), then a unified diff of the canonical JSON.

Example:
  driftgate template diff /tmp/anthropic-before.json proxy/templates/anthropic.json
"""


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _shows_help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """A handler for a command group run without a subcommand: its help, exit status 2."""

    def show(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return show


def _command(sub: Any, name: str, *, help: str, description: str) -> argparse.ArgumentParser:
    """A subcommand whose description keeps its own line breaks (examples, tables)."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=description, formatter_class=_formatter
    )
    return parser


def _group(sub: Any, name: str, *, help: str, description: str, dest: str, metavar: str) -> Any:
    """A command that only holds subcommands: run bare, it prints its help and exits 2."""
    group = _command(sub, name, help=help, description=description)
    group.set_defaults(handler=_shows_help(group))
    return group.add_subparsers(dest=dest, metavar=metavar)


def register_watch(sub: Any) -> None:
    """Attach `driftgate watch` and its `npm` watcher."""
    watchers = _group(
        sub,
        "watch",
        help="watch upstream packages and open drift PRs",
        description=WATCH_HELP,
        dest="watcher",
        metavar="WATCHER",
    )
    npm = _command(
        watchers,
        "npm",
        help="new npm releases -> rebaked templates -> pull requests",
        description=WATCH_NPM_HELP,
    )
    npm.add_argument(
        "--package",
        action="append",
        default=[],
        metavar="NAME",
        help="watch only NAME (repeatable; default: config, else the three defaults)",
    )
    npm.add_argument(
        "--tag", metavar="TAG", help="dist-tag compared with the template (default: latest)"
    )
    npm.add_argument(
        "--once", action="store_true", help="run one pass and exit (default: run every --interval)"
    )
    npm.add_argument(
        "--interval",
        type=float,
        metavar="MINUTES",
        help="minutes between passes without --once (default: 60)",
    )
    npm.add_argument(
        "--dry-run",
        action="store_true",
        help="print the PR it would open (title, labels, body); push, record and change nothing",
    )
    npm.add_argument(
        "--json",
        action="store_true",
        help="print a machine-readable report: versions compared, facts, decision, PR",
    )
    npm.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=None,
        help="print progress to stderr (the default when stderr is a terminal)",
    )
    npm.add_argument(
        "--repo",
        metavar="OWNER/NAME",
        help="repository that receives the PRs (default: [watch] repo)",
    )
    npm.add_argument(
        "--git-remote",
        metavar="URL|PATH",
        help="git remote to clone and push (default: the repo on the GitHub server)",
    )
    npm.add_argument(
        "--workdir",
        metavar="PATH",
        help="where the repository is cloned (default: $DRIFTGATE_HOME/work)",
    )
    npm.add_argument(
        "--github-api-url", metavar="URL", help="GitHub REST API (Enterprise: https://HOST/api/v3)"
    )
    npm.add_argument(
        "--registry",
        metavar="URL",
        help="npm registry (default: [watch] registry, npm_config_registry, ~/.npmrc, npmjs)",
    )
    npm.add_argument(
        "--templates",
        metavar="DIR",
        help="compare with the templates in DIR (default: the --repo default branch, "
        "else the bundled ones)",
    )
    npm.add_argument(
        "--on-trivial",
        choices=("record", "pr"),
        help="a release that changes no fact: record and fold (default) or open a PR",
    )
    npm.add_argument(
        "--auto-merge",
        choices=("off", "additive"),
        help="enable GitHub auto-merge on additive (never breaking) PRs",
    )
    npm.set_defaults(handler=_run_watch_npm)


def _run_watch_npm(args: argparse.Namespace) -> int:
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


def register_template(sub: Any) -> None:
    """Attach `driftgate template validate` and `driftgate template diff`."""
    cmds = _group(
        sub,
        "template",
        help="validate and diff templates",
        description=TEMPLATE_HELP,
        dest="template_command",
        metavar="ACTION",
    )
    validate = _command(
        cmds, "validate", help="check templates against their schemas", description=VALIDATE_HELP
    )
    validate.add_argument(
        "paths", nargs="*", metavar="PATH", help="template files or directories (default: bundled)"
    )
    validate.set_defaults(handler=_run_validate)
    diff = _command(
        cmds,
        "diff",
        help="the Markdown a drift PR would carry for OLD -> NEW",
        description=DIFF_HELP,
    )
    diff.add_argument("old", metavar="OLD", help="the template before")
    diff.add_argument("new", metavar="NEW", help="the template after")
    diff.add_argument(
        "--max-chars",
        type=int,
        default=None,
        metavar="N",
        help="truncate the diff block as a PR body would (default: print all)",
    )
    diff.set_defaults(handler=_run_diff)


def _run_validate(args: argparse.Namespace) -> int:
    from driftgate.watchers.template_command import validate_paths

    return validate_paths([Path(p) for p in args.paths])


def _run_diff(args: argparse.Namespace) -> int:
    from driftgate.watchers.template_command import diff_files

    return diff_files(Path(args.old), Path(args.new), max_chars=args.max_chars)
