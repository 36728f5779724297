"""`driftgate`: the top-level command; subcommands register through entry points."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from driftgate.proxy import __version__
from driftgate.proxy.errors import DriftgateError

ENTRY_POINT_GROUP = "driftgate.commands"
Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def build_parser() -> argparse.ArgumentParser:
    """The parser with every registered subcommand attached."""
    parser = argparse.ArgumentParser(
        prog="driftgate",
        description=(
            "A local LLM gateway (Anthropic Messages, OpenAI Chat Completions and OpenAI "
            "Responses on http://127.0.0.1:3456) and a drift watcher that turns upstream "
            "change into reviewable pull requests. `driftgate COMMAND --help` has examples; "
            "the manual is docs/README.md."
        ),
    )
    parser.add_argument("--version", action="version", version=f"driftgate {__version__}")
    parser.add_argument("--config", metavar="PATH", help=CONFIG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        register: Register = ep.load()
        register(sub)
    _config_after_the_command(parser)
    return parser


CONFIG_HELP = "config file (default: $DRIFTGATE_HOME/config.toml, ~/.driftgate)"


def _config_after_the_command(parser: argparse.ArgumentParser) -> None:
    """`driftgate proxy --config X` works as `driftgate --config X proxy` does, at any depth.

    Each subcommand's parser gets `--config` whose default is left out of the result, so the one
    given before the command stays unless one is given after it too (then that one wins).
    """
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for child in set(action.choices.values()):
            if "--config" not in child._option_string_actions:
                child.add_argument(
                    "--config", metavar="PATH", default=argparse.SUPPRESS, help=CONFIG_HELP
                )
            _config_after_the_command(child)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; DriftgateError becomes one line on stderr and exit status 2."""
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # here, not at exit (also after --help), so a closed pipe is caught
    except BrokenPipeError:
        # The reader left (`driftgate usage --json | head`): stop quietly, like other Unix tools.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's flush at exit must not fail again
        os.close(devnull)
        return 128 + signal.SIGPIPE
    except KeyboardInterrupt:
        return 130


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except DriftgateError as exc:
        print(f"driftgate: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        raise
    except OSError as exc:  # a file or directory the command needs: say which and why, in words
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"driftgate: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
