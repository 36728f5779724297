"""`driftgate watch ...` and `driftgate template ...`: argument parsing and help; the work lives elsewhere."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driftgate.watchers.catalog import WatcherSpec

WATCH_HELP = """\
Watch the world the gateway depends on and turn each change into one reviewable
pull request or alert issue.

Watchers:
{listing}

Run `driftgate watch WATCHER --help` for the details. Every run pings the
dead-man's switch at DRIFTGATE_PING_URL (or [watch] ping_url) when one is set:
<url>/start, then <url> on success or <url>/fail with the exit status.
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
    """Attach `driftgate watch` and every watcher in the catalog."""
    from driftgate.watchers.catalog import watchers as catalog

    specs = catalog()
    listing = "\n".join(f"  {s.name:<9} {s.help}" for s in specs.values())
    group = _group(
        sub,
        "watch",
        help="watch upstreams and watchers; open drift PRs and alert issues",
        description=WATCH_HELP.format(listing=listing),
        dest="watcher",
        metavar="WATCHER",
    )
    for spec in specs.values():
        parser = _command(group, spec.name, help=spec.help, description=spec.description)
        spec.add_arguments(parser)
        parser.set_defaults(handler=_pinged(spec))


def _pinged(spec: WatcherSpec) -> Callable[[argparse.Namespace], int]:
    """The watcher's handler, wrapped in the dead-man's switch pings."""

    def handler(args: argparse.Namespace) -> int:
        from driftgate.watchers.pinged_run import run_pinged

        config_path = Path(args.config) if getattr(args, "config", None) else None
        return run_pinged(spec, args, config_path=config_path, env=os.environ)

    return handler


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
