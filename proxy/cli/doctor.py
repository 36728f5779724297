"""`driftgate doctor`: one paste-ready report of what works and what to fix."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from driftgate.proxy.cli import doctor_checks as checks
from driftgate.proxy.cli.doctor_responses import responses_store
from driftgate.proxy.config import load_config
from driftgate.proxy.errors import ConfigError

MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def register(sub: Any) -> None:
    """Attach `driftgate doctor`."""
    parser = sub.add_parser(
        "doctor",
        help="check the config, backends, templates, port, records, guard, daemon and GitHub token",
        description=(
            "Print one report to paste into an issue: versions; whether the config loads; each "
            "backend's reachability and whether it accepts its key (one GET of its model list, "
            "which costs nothing; keys are never printed); the templates and their hashes; "
            "whether the port is free or a gateway answers there; the usage database; the spend "
            "guard; the daemon's last successes; the GitHub token, when GITHUB_TOKEN is set. "
            "Exits 1 when something fails, with what to do about it."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument(
        "--offline", action="store_true", help="skip the checks that reach a backend or GitHub"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run every check, print the report, exit 1 on any failure."""
    env = dict(os.environ)
    found: list[checks.Finding] = checks.versions()
    try:
        config = load_config(path=Path(args.config) if getattr(args, "config", None) else None)
    except ConfigError as exc:
        found.append(checks.Finding("config", "fail", str(exc), "fix the file as the line says"))
        return _report(found, args.json)
    found.append(
        checks.Finding("config", "ok", f"{config.path} loads ({len(config.backends)} backends)")
    )
    more, templates = checks.templates(config)
    found += more
    if not args.offline:
        found += checks.backends(config, env, templates)
    found += checks.port(config)
    found += checks.workers(config)
    found += checks.recorder(config)
    found += checks.guard(config)
    found += responses_store(config)
    found += checks.daemon(config.home)
    if not args.offline:
        found += checks.github(env, config.watch)
    return _report(found, args.json)


def _report(found: list[checks.Finding], as_json: bool) -> int:
    failed = [f for f in found if f.level == "fail"]
    if as_json:
        print(json.dumps({"ok": not failed, "findings": [asdict(f) for f in found]}, indent=2))
        return 1 if failed else 0
    section = ""
    for f in found:
        if f.section != section:
            section = f.section
            print(f"\n{section}")
        print(f"  {MARK[f.level]} {f.text}")
        if f.fix:
            print(f"       -> {f.fix}")
    warned = sum(f.level == "warn" for f in found)
    print(f"\n{len(failed)} failed, {warned} warnings, {len(found) - len(failed) - warned} ok")
    return 1 if failed else 0
