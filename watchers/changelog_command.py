"""`driftgate changelog PACKAGE [--last N] [--json] [--markdown]`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

HELP = """\
Read the last N releases of a watched npm package from the registry (each
tarball integrity-checked, the facts cached under $DRIFTGATE_HOME/cache), read
each one's facts with the same extractor `driftgate watch npm` uses (models,
betas, API version, tools and their fields, engines), and print per release
what changed against the one before. Oldest first.

The registry is [watch] registry, else npm_config_registry / ~/.npmrc, else
the public registry (--registry overrides). A package with no extractor of its
own names one with --extractor (or [watch] packages' extractor).

Examples:
  driftgate changelog @anthropic-ai/claude-code --last 10
  driftgate changelog @anthropic-ai/sdk --last 5 --json
  driftgate changelog openai --markdown > openai-changelog.md

Exit status: 0 printed; 2 usage, config or registry error.
"""


def register(sub: Any) -> None:
    """Attach `driftgate changelog`."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "changelog",
        help="per release of a watched npm package, what changed on the wire",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("package", help="the npm package, e.g. @anthropic-ai/claude-code")
    parser.add_argument("--last", type=int, default=10, metavar="N", help="releases (default 10)")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print the JSON document")
    shown.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--registry", metavar="URL", help="npm registry URL")
    parser.add_argument(
        "--extractor", metavar="NAME", help="the extractor to read the package with"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the command; errors are one line on stderr."""
    import httpx

    from driftgate.proxy.config import load_config
    from driftgate.proxy.errors import DriftgateError
    from driftgate.watchers.changelog import (
        changelog,
        facts_cache,
        pick_extractor,
        render_markdown,
        render_text,
    )
    from driftgate.watchers.extractors import extractors
    from driftgate.watchers.npm.command import REGISTRY_TIMEOUT, _user_agent
    from driftgate.watchers.npm.registry import NpmRegistry
    from driftgate.watchers.npm.registry_url import resolve_registry_url

    if args.last < 1:
        print("driftgate: --last must be at least 1", file=sys.stderr)
        return 2
    try:
        config_path = Path(args.config) if getattr(args, "config", None) else None
        config = load_config(os.environ, config_path)
        found = extractors()
        configured = config.watch.get("packages") or []
        extractor = pick_extractor(args.package, found, args.extractor, configured)
        if extractor is None:
            known = ", ".join(sorted(e.name for e in found.values()))
            print(f"driftgate: no extractor reads {args.package!r}; name one with --extractor "
                  f"({known})", file=sys.stderr)  # fmt: skip
            return 2
        url = resolve_registry_url(args.registry or config.watch.get("registry"), os.environ)
        say = (
            (lambda m: print(f"driftgate: {m}", file=sys.stderr, flush=True))
            if args.verbose
            else None
        )
        with httpx.Client(
            timeout=REGISTRY_TIMEOUT, headers={"User-Agent": _user_agent()}
        ) as client:
            registry = NpmRegistry(url, client=client, cache_dir=config.home / "cache" / "npm")
            doc = changelog(registry, extractor, args.package, args.last,
                            facts_cache(config.home, args.package), say)  # fmt: skip
    except DriftgateError as exc:
        print(f"driftgate: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    if args.json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    elif args.markdown:
        sys.stdout.write(render_markdown(doc))
    else:
        sys.stdout.write(render_text(doc))
    return 0
