"""`driftgate watch canary`: plan probes from config and templates, bound the cost, send, judge,
then alert / fix / recover through the publisher (or only report, without --repo)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

from driftgate.proxy.config import BackendConfig, Config, default_backends, load_config
from driftgate.proxy.errors import ConfigError
from driftgate.watchers.canary.checks import Outcome
from driftgate.watchers.canary.planning import cap, chosen_backends, plan_all
from driftgate.watchers.canary.probes import estimated_cost
from driftgate.watchers.canary.publishing import publish_outcome, repo_templates
from driftgate.watchers.canary.run import BackendProbes, CanaryResult, run_probes
from driftgate.watchers.errors import WatchError
from driftgate.watchers.github import MIN_WRITE_INTERVAL, actions_run_url
from driftgate.watchers.publish import Publisher
from driftgate.watchers.template_sources import DirectoryTemplates
from driftgate.watchers.watch_publisher import publisher_for

DEFAULT_MAX_PROBES = 100
DEFAULT_MAX_USD = 1.0
PROBE_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
EXIT_OK, EXIT_DIVERGED, EXIT_USAGE, EXIT_NO_KEY = 0, 1, 2, 3


@dataclass(frozen=True)
class CanaryFlags:
    """The command line (None: not given)."""

    backends: Sequence[str] = ()
    dry_run: bool = False
    as_json: bool = False
    max_probes: int | None = None
    max_usd: float | None = None
    templates: str | None = None
    repo: str | None = None
    github_api_url: str | None = None
    git_remote: str | None = None
    workdir: str | None = None


def _positive(value: Any, what: str, kind: type[int] | type[float]) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{what} must be a positive number, got {value!r}")
    return kind(value)


def _line(outcome: Outcome) -> str:
    p = outcome.probe
    tail = (
        f" ({outcome.finding}: {outcome.detail})"
        if outcome.finding
        else (f" ({outcome.detail})" if outcome.detail else "")
    )
    return f"  {p.backend:<12} {p.model:<28} {p.check:<40} {outcome.verdict.upper()}{tail}"


class CanaryCommand:
    """One invocation, with its output streams."""

    def __init__(
        self,
        flags: CanaryFlags,
        config: Config,
        env: Mapping[str, str],
        out: TextIO,
        err: TextIO,
        *,
        min_write_interval: float = MIN_WRITE_INTERVAL,
    ) -> None:
        self.flags, self.config, self.env, self.out, self.err = flags, config, env, out, err
        self.min_write_interval = min_write_interval
        self.watch: Mapping[str, Any] = config.watch
        canary = self.watch.get("canary", {})
        if not isinstance(canary, Mapping):
            raise ConfigError("[watch.canary] must be a table")
        self.max_probes = _positive(
            flags.max_probes or canary.get("max_probes", DEFAULT_MAX_PROBES), "max_probes", int
        )
        self.max_usd = _positive(
            flags.max_usd or canary.get("max_usd", DEFAULT_MAX_USD), "max_usd", float
        )

    def say(self, text: str) -> None:
        """A line for a person (stderr with --json, so stdout stays one JSON document)."""
        print(text, file=self.err if self.flags.as_json else self.out, flush=True)

    def templates(self) -> DirectoryTemplates:
        """--templates, else the gateway's templates_dir, else the bundled templates."""
        chosen = self.flags.templates or self.config.templates_dir
        return DirectoryTemplates(Path(chosen).expanduser()) if chosen else DirectoryTemplates()

    def run(self) -> int:
        """The whole command; the exit status."""
        backends = chosen_backends(self.config, self.flags.backends, self.env)
        if not backends and not self.flags.backends:
            # Nothing configured and no key in the environment: plan for the two default backends,
            # so --dry-run shows what would be sent and the key check below says what to set.
            backends = list(_example_backends())
        plans, dropped = cap(plan_all(backends, self.templates()), self.max_probes)
        keys = {p.backend.name: k for p in plans if (k := p.backend.resolve_key(self.env))}
        keyless = [p.backend.name for p in plans if p.backend.name not in keys]
        probes = [probe for p in plans for probe in p.probes]
        estimate = estimated_cost(probes)
        self.say(
            f"driftgate watch canary: {len(probes)} probe(s) on {len(plans)} backend(s), "
            f"estimated cost at most ${estimate:.4f} (--max-usd {self.max_usd:g})"
        )
        if dropped:
            self.say(f"  {len(dropped)} probe(s) over --max-probes {self.max_probes} not sent")
        for plan in plans:
            if plan.unprobed:
                self.say(
                    f"  {plan.backend.name}: claimed, but the canary has no probe for: "
                    + ", ".join(plan.unprobed)
                )
        if self.flags.dry_run:
            for probe in probes:
                self.say(
                    f"  {probe.backend:<12} {probe.model:<28} {probe.check:<40} max_tokens {probe.max_tokens}"
                )
        if not plans:
            self.say("nothing to probe: no backend of kind anthropic or openai is configured")
            return EXIT_USAGE
        if not keys:
            self.say(
                "driftgate: no API key: the canary needs a real key for "
                + ", ".join(
                    f"{b} ({_key_hint(p.backend)})" for p in plans for b in [p.backend.name]
                )
                + "; nothing was sent"
            )
            return EXIT_NO_KEY
        if keyless:
            self.say(f"  no key for {', '.join(keyless)}: not probed")
            plans = [p for p in plans if p.backend.name in keys]
        if self.flags.dry_run:
            return EXIT_OK
        estimate = estimated_cost([probe for p in plans for probe in p.probes])
        if estimate > self.max_usd:
            raise ConfigError(
                f"the probes could cost up to ${estimate:.4f}, over --max-usd {self.max_usd:g}: "
                "raise --max-usd, lower --max-probes, or probe one --backend"
            )
        publisher = publisher_for(
            self.watch,
            self.flags,
            self.config.home,
            self.env,
            min_write_interval=self.min_write_interval,
        )
        with httpx.Client(timeout=PROBE_TIMEOUT) as client:
            result = run_probes(client, plans, keys, None if self.flags.as_json else self._progress)
        return self.conclude(plans, result, publisher)

    def _progress(self, outcome: Outcome) -> None:
        self.say(_line(outcome))

    def conclude(
        self, plans: list[BackendProbes], result: CanaryResult, publisher: Publisher | None
    ) -> int:
        """Report; then alert, fix or recover on GitHub, unless the run met an error."""
        report: dict[str, Any] = {
            "probes": [
                {
                    "backend": o.probe.backend,
                    "model": o.probe.model,
                    "check": o.probe.check,
                    "verdict": o.verdict,
                    "finding": o.finding,
                    "detail": o.detail,
                }
                for o in result.all()
            ],
            "alerts": [],
            "pull_requests": [],
        }
        errors = result.errors()
        diverged = result.divergences()
        if errors:
            self.say(
                f"driftgate: {len(errors)} probe(s) could not be judged ({errors[0].detail}); "
                "nothing was changed on GitHub"
            )
            return self._emit(report, EXIT_DIVERGED)
        if publisher is None:
            if diverged:
                self.say(f"{len(diverged)} divergence(s); no --repo: no alert filed")
            return self._emit(report, EXIT_DIVERGED if diverged else EXIT_OK)
        try:
            approved = self.templates() if self.flags.templates else repo_templates(publisher)
            publish_outcome(
                plans,
                result,
                publisher,
                approved,
                report,
                run_url=actions_run_url(self.env),
                say=self.say,
            )
        except WatchError as exc:
            self.say(f"driftgate: {exc}")
            return self._emit(report, EXIT_DIVERGED)
        return self._emit(report, EXIT_DIVERGED if diverged else EXIT_OK)

    def _emit(self, report: dict[str, Any], status: int) -> int:
        report["exit_code"] = status
        if self.flags.as_json:
            self.out.write(json.dumps(report, indent=2) + "\n")
        else:
            passed = sum(1 for p in report["probes"] if p["verdict"] == "pass")
            self.say(
                f"canary: {passed}/{len(report['probes'])} probes passed; exit status {status}"
            )
        return status


def _key_hint(backend: BackendConfig) -> str:
    if backend.key_env:
        return f"set {backend.key_env}"
    if backend.auth == "passthrough":
        return "a passthrough backend has no key of its own: add key_env"
    return f"set key_env in [backends.{backend.name}], or ANTHROPIC_API_KEY / OPENAI_API_KEY"


def _example_backends() -> tuple[BackendConfig, ...]:
    """What --dry-run lists with nothing configured: the two default backends."""
    return default_backends({"ANTHROPIC_API_KEY": "-", "OPENAI_API_KEY": "-"})


def run_watch_canary(
    flags: CanaryFlags,
    *,
    config_path: Path | None,
    env: Mapping[str, str],
    out: TextIO | None = None,
    err: TextIO | None = None,
    min_write_interval: float = MIN_WRITE_INTERVAL,
) -> int:
    """The `driftgate watch canary` command."""
    config = load_config(env, config_path)
    command = CanaryCommand(
        flags,
        config,
        env,
        out or sys.stdout,
        err or sys.stderr,
        min_write_interval=min_write_interval,
    )
    return command.run()
