"""`driftgate compat run PACKAGE@VERSION [--json]`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

HELP = """\
Install one exact release of a client from the npm registry into a scratch
directory and run it headless with an API key, never a login (HOME is a scratch
directory): `claude -p` (Anthropic Messages), `codex exec` with a model provider
in a scratch CODEX_HOME (OpenAI Responses), any other package: its bin with a
prompt (Anthropic Messages). Three runs against driftgate's built-in echo
upstream: straight at it, through the gateway to a backend of the client's own
kind (same dialect), and through the gateway to a backend of the other kind
(translated: Claude Code to an OpenAI-kind backend, Codex to an Anthropic-kind
one). Reports whether each run completed, and what the gateway dropped or
changed: found by comparing what reached the upstream with what the client sent
straight to it ([upstream]), and by the gateway's own x-driftgate-dropped and
x-driftgate-adjusted answer headers. The gateway runs write the shapes they saw
into the shape log ([shapes] path, else DRIFTGATE_HOME/shapes.sqlite3), the one
`watch shapes` reads. No real API is called.

The registry is [watch] registry, else npm_config_registry / ~/.npmrc, else
the public registry (--registry overrides).

Examples:
  driftgate compat run @anthropic-ai/claude-code@2.1.332
  driftgate compat run @openai/codex@0.171.0 --json

Exit status: 0 every run completed; 1 one did not; 2 usage, install or config error.
"""


def register(sub: Any) -> None:
    """Attach `driftgate compat run`."""
    compat = sub.add_parser("compat", help="run a client release through the gateway",
                            description="Compatibility runs of client releases.")  # fmt: skip
    inner = compat.add_subparsers(dest="compat_command", metavar="COMMAND")
    parser = inner.add_parser("run", help="run PACKAGE@VERSION headless through the gateway",
                              description=HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("spec", metavar="PACKAGE@VERSION")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--markdown", action="store_true", help="print the PR body section")
    parser.add_argument("--registry", metavar="URL", help="npm registry URL")
    parser.set_defaults(handler=run)
    compat.set_defaults(handler=lambda _a: (compat.print_help(), 2)[1])


def run(args: argparse.Namespace) -> int:
    """Run the command."""
    from driftgate.proxy.config import load_config
    from driftgate.proxy.errors import DriftgateError
    from driftgate.watchers.compat.run import compat_run, render_markdown
    from driftgate.watchers.npm.registry_url import resolve_registry_url

    try:
        config_path = Path(args.config) if getattr(args, "config", None) else None
        config = load_config(os.environ, config_path)
        registry = resolve_registry_url(args.registry or config.watch.get("registry"), os.environ)
        report = compat_run(args.spec, registry, config.shapes.file(config.home))
    except DriftgateError as exc:
        print(f"driftgate: {exc}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(render_markdown(report))
    ok = report["direct"]["completed"] and report["through_gateway"]["completed"]
    return 0 if ok and report["translated"]["completed"] else 1
