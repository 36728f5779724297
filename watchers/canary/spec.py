"""`driftgate watch canary` in the watcher catalog: flags, help, schedule, silence threshold."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from driftgate.watchers.catalog import WatcherSpec

HELP = """\
Probe the backends configured for the gateway with a real API key and notice
class C drift: the upstream behaves differently with no release and no wire
change. Per model of the backend's template (`anthropic`, `openai`): one
minimal request (is the model still served?), one per capability the template
claims (thinking, adaptive thinking, tools, vision; reasoning for OpenAI), one
per beta it lists; each answer's shape and usage are checked, and the
rate-limit headers of the first answer must parse.

Cost is bounded: at most --max-probes requests, max_tokens 1 (16 for OpenAI
and adaptive thinking, 1025 for extended thinking, its minimum), and the
estimated cost is printed before anything is sent; a run whose estimate is over
--max-usd sends nothing.

With --repo (or [watch] repo) and GITHUB_TOKEN, a divergence opens one alert
issue per backend (label drift:canary; commented when seen again; closed by the
first later run whose probes all pass), and where the fix is a template change
(a model retired, a capability refused) one PR on branch
driftgate/canary-TEMPLATE. A probe that could not be judged (network, 401/403,
429, 5xx) fails the run and nothing on GitHub is touched. Without --repo the
canary only reports.

Backends: [backends.*] of the gateway config (their base_url and key), else
ANTHROPIC_API_KEY / OPENAI_API_KEY. A backend with `models` patterns is probed
only for the template models they match. Settings: [watch.canary] max_probes,
max_usd.

Examples:
  driftgate watch canary --dry-run                 # the probes and their cost, nothing sent
  ANTHROPIC_API_KEY=... driftgate watch canary --once --backend anthropic
  GITHUB_TOKEN=... driftgate watch canary --once --repo OWNER/NAME --max-usd 0.5

Exit status: 0 healthy; 1 divergence reported or the run failed; 2 usage or
config error (or the estimate is over --max-usd); 3 no API key.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `driftgate watch canary`."""
    parser.add_argument(
        "--once", action="store_true", help="one pass (the canary always runs one; for symmetry)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list the probes and their cost; send nothing"
    )
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON on stdout")
    parser.add_argument(
        "--backend",
        action="append",
        default=[],
        metavar="NAME",
        help="probe only this configured backend (repeatable)",
    )
    parser.add_argument(
        "--max-probes", type=int, metavar="N", help="send at most N probes (default 100)"
    )
    parser.add_argument(
        "--max-usd",
        type=float,
        metavar="USD",
        help="refuse to send when the estimate is higher (default 1.00)",
    )
    parser.add_argument(
        "--templates",
        metavar="DIR",
        help="templates to probe (default: the gateway's templates_dir, else bundled)",
    )
    parser.add_argument("--repo", metavar="OWNER/NAME", help="repository for alerts and fix PRs")
    parser.add_argument("--github-api-url", metavar="URL", help="GitHub REST API base")
    parser.add_argument("--git-remote", metavar="URL|PATH", help="git remote for fix PRs")
    parser.add_argument("--workdir", metavar="PATH", help="where the repository is cloned")


def run(args: argparse.Namespace) -> int:
    """Run `driftgate watch canary` from parsed arguments."""
    from driftgate.watchers.canary.command import CanaryFlags, run_watch_canary

    flags = CanaryFlags(
        backends=tuple(args.backend),
        dry_run=args.dry_run,
        as_json=args.json,
        max_probes=args.max_probes,
        max_usd=args.max_usd,
        templates=args.templates,
        repo=args.repo,
        github_api_url=args.github_api_url,
        git_remote=args.git_remote,
        workdir=args.workdir,
    )
    config_path = Path(args.config) if getattr(args, "config", None) else None
    return run_watch_canary(flags, config_path=config_path, env=os.environ)


SPEC = WatcherSpec(
    name="canary",
    help="live probes of the configured backends -> alert issues, template fix PRs",
    description=HELP,
    add_arguments=add_arguments,
    run=run,
    cron="23 6 * * *",
    max_age_hours=36,
)
