"""`driftgate watch liveness`: read every watcher's last success (Actions or the daemon's store),
re-dispatch a stale workflow once, alert while it stays stale, close the alert on recovery."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TextIO

from driftgate.proxy.config import Config, load_config
from driftgate.proxy.errors import ConfigError
from driftgate.watchers.alerts import AlertPlan, alert_fingerprint
from driftgate.watchers.catalog import watchers
from driftgate.watchers.daemon.jobs import daemon_settings
from driftgate.watchers.daemon.store import RunStore, store_path
from driftgate.watchers.errors import WatchError
from driftgate.watchers.github import MIN_WRITE_INTERVAL, actions_run_url
from driftgate.watchers.liveness.decide import Sighting, Verdict, decide, hours, silence
from driftgate.watchers.publish import Publisher
from driftgate.watchers.watch_publisher import publisher_for

LABEL = "drift:liveness"
RUNBOOK = "runbooks/silent-watcher.md"
Source = Literal["actions", "daemon"]
EXIT_OK, EXIT_STALE, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True)
class LivenessFlags:
    """The command line (None / empty: not given)."""

    source: str | None = None
    max_age: Sequence[str] = ()  # NAME=HOURS
    watchers: Sequence[str] = ()
    dry_run: bool = False
    as_json: bool = False
    repo: str | None = None
    github_api_url: str | None = None
    git_remote: str | None = None
    workdir: str | None = None


def thresholds(table: Mapping[str, Any], flags: Sequence[str]) -> dict[str, timedelta]:
    """Hours per watcher: each catalog watcher's default, then [watch.liveness] max_age_hours,
    then --max-age NAME=HOURS; 0 turns a watcher's check off."""
    hours_by_name: dict[str, float] = {
        name: spec.max_age_hours for name, spec in watchers().items() if name != "liveness"
    }
    configured = table.get("max_age_hours", {})
    if not isinstance(configured, Mapping):
        raise ConfigError("[watch.liveness] max_age_hours is a table, e.g. {npm = 3, canary = 36}")
    pairs: list[tuple[str, Any]] = list(configured.items())
    for item in flags:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--max-age takes NAME=HOURS, got {item!r}")
        pairs.append((name, value))
    for name, value in pairs:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"max age of {name!r} must be a number of hours, got {value!r}"
            ) from None
        if number < 0:
            raise ConfigError(f"max age of {name!r} must not be negative, got {value!r}")
        hours_by_name[str(name)] = number
    return {n: timedelta(hours=h) for n, h in hours_by_name.items() if h > 0}


def alert_plan(verdict: Verdict, run_url: str | None) -> AlertPlan:
    """The issue for one silent watcher; it changes (and is rewritten) only when a run succeeds."""
    s = verdict.sighting
    last = s.last_success.strftime("%Y-%m-%d %H:%M UTC") if s.last_success else "never"
    lines = [
        f"The `{s.watcher}` watcher {silence(verdict)} "
        f"(threshold {hours(verdict.max_age)}), as read from {s.source} ({s.where}).",
        "",
        f"- last success: {last}",
    ]
    if s.redispatched_at:
        lines.append(
            f"- re-dispatched at {s.redispatched_at.strftime('%Y-%m-%d %H:%M UTC')}: "
            "it has not succeeded since"
        )
    if run_url:
        lines.append(f"- liveness run: {run_url}")
    lines += [
        "",
        f"What to do: [{RUNBOOK}]({RUNBOOK}). This issue closes itself when liveness next sees "
        "a success within the threshold.",
    ]
    return AlertPlan(
        key=f"liveness:{s.watcher}",
        label=LABEL,
        title=f"liveness: {s.watcher} {silence(verdict)} (threshold {hours(verdict.max_age)})",
        body="\n".join(lines),
        fingerprint=alert_fingerprint([s.watcher, s.source, last]),
        repeat_comment="",  # a silent watcher is not news every two hours
    )


def _sightings_actions(publisher: Publisher, names: Sequence[str]) -> list[Sighting]:
    out = []
    for name in names:
        workflow = f"watch-{name}.yml"
        history = publisher.workflow_history(workflow)
        if history is None:
            out.append(Sighting(name, "actions", workflow, exists=False))
            continue
        out.append(
            Sighting(
                name,
                "actions",
                workflow,
                last_success=history.last_success,
                redispatched_at=history.redispatched_at,
                can_redispatch=True,
            )
        )
    return out


def _sightings_daemon(store: RunStore, names: Sequence[str], scheduled: set[str]) -> list[Sighting]:
    """Only the jobs the daemon runs and has started at least once: a disabled job, or one this
    daemon never ran, is not set up (not silent)."""
    out = []
    for n in names:
        since = store.first_run(n)
        exists = n in scheduled and since is not None
        out.append(Sighting(n, "daemon", f"job {n}", exists, store.last_success(n), since=since))
    return out


class LivenessCommand:
    """One invocation."""

    def __init__(
        self,
        flags: LivenessFlags,
        config: Config,
        env: Mapping[str, str],
        out: TextIO,
        err: TextIO,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        min_write_interval: float = MIN_WRITE_INTERVAL,
    ) -> None:
        self.flags, self.config, self.env, self.out, self.err = flags, config, env, out, err
        self.clock = clock
        self.min_write_interval = min_write_interval
        table = config.watch.get("liveness", {})
        if not isinstance(table, Mapping):
            raise ConfigError("[watch.liveness] must be a table")
        source = flags.source or table.get("source", "actions")
        if source not in ("actions", "daemon"):
            raise ConfigError(f"liveness source must be actions or daemon, got {source!r}")
        self.source: Source = "daemon" if source == "daemon" else "actions"
        self.max_age = thresholds(table, flags.max_age)
        unknown = [n for n in flags.watchers if n not in self.max_age]
        if unknown:
            raise ConfigError(
                f"--watcher {', '.join(unknown)}: no threshold for it "
                f"(known: {', '.join(sorted(self.max_age))}); add --max-age NAME=HOURS"
            )

    def say(self, text: str) -> None:
        """A line for a person (stderr with --json)."""
        print(text, file=self.err if self.flags.as_json else self.out, flush=True)

    def run(self) -> int:
        """Read everything first; then act (dispatch, alert, close) unless --dry-run."""
        names = list(self.flags.watchers) or sorted(self.max_age)
        publisher = publisher_for(
            self.config.watch,
            self.flags,
            self.config.home,
            self.env,
            min_write_interval=self.min_write_interval,
        )
        if self.source == "actions" and publisher is None:
            raise ConfigError(
                "liveness from GitHub Actions needs --repo OWNER/NAME (or [watch] repo) and "
                "GITHUB_TOKEN; on a machine running the daemon use --source daemon"
            )
        try:
            if self.source == "actions":
                assert publisher is not None
                sightings = _sightings_actions(publisher, names)
            else:
                settings = daemon_settings(self.config.daemon, watchers())
                scheduled = {j.name for j in settings.jobs if j.enabled}
                store = RunStore(store_path(self.config.home))
                sightings = _sightings_daemon(store, names, scheduled)
            if publisher is not None:
                publisher.open_alerts(LABEL)
        except WatchError as exc:
            self.say(f"driftgate: {exc}; nothing was changed on GitHub")
            return EXIT_STALE
        now = self.clock()
        verdicts = [decide(s, self.max_age[s.watcher], now) for s in sightings]
        for v in verdicts:
            self.say(
                f"  {v.sighting.watcher:<10} {v.action:<11} "
                + ("never succeeded" if v.age is None else f"last success {hours(v.age)} ago")
                + f" (threshold {hours(v.max_age)}, {v.sighting.source}: {v.sighting.where})"
            )
        report: dict[str, Any] = {
            "source": self.source,
            "watchers": [
                {
                    "watcher": v.sighting.watcher,
                    "action": v.action,
                    "last_success": v.sighting.last_success.isoformat()
                    if v.sighting.last_success
                    else None,
                    "max_age_hours": v.max_age.total_seconds() / 3600,
                    "alert": None,
                }
                for v in verdicts
            ],
        }
        status = EXIT_STALE if any(v.action == "alert" for v in verdicts) else EXIT_OK
        if publisher is not None and not self.flags.dry_run:
            try:
                self.act(publisher, verdicts, report)
            except WatchError as exc:
                self.say(f"driftgate: {exc}")
                status = EXIT_STALE
        elif publisher is None and status:
            self.say("no --repo: no alert filed")
        if self.flags.as_json:
            report["exit_code"] = status
            self.out.write(json.dumps(report, indent=2) + "\n")
        return status

    def act(self, publisher: Publisher, verdicts: list[Verdict], report: dict[str, Any]) -> None:
        """Dispatch, alert, or close, per verdict."""
        run_url = actions_run_url(self.env)
        for v, entry in zip(verdicts, report["watchers"], strict=True):
            key = f"liveness:{v.sighting.watcher}"
            if v.action == "redispatch":
                publisher.dispatch_workflow(v.sighting.where)
                self.say(f"  re-dispatched {v.sighting.where}")
            elif v.action == "alert":
                result = publisher.raise_alert(alert_plan(v, run_url))
                entry["alert"] = result.action
                if result.action != "unchanged":
                    self.say(
                        f"  alert for {v.sighting.watcher}: {result.action} {result.url or ''}".rstrip()
                    )
            else:
                s = v.sighting
                if v.action == "fresh":
                    why = f"Recovered: `{s.watcher}` succeeded {hours(v.age)} ago."
                    if v.age is None:
                        why = f"Recovered: `{s.watcher}` is new here and within its threshold."
                else:  # not-set-up: nothing runs it here any more, so it cannot be silent
                    why = f"`{s.watcher}` is not set up here any more ({s.source}: {s.where})."
                result = publisher.clear_alert(key, LABEL, why + " Closing.")
                entry["alert"] = result.action
                if result.action == "closed":
                    self.say(f"  alert for {s.watcher}: closed {result.url or ''}".rstrip())


def run_watch_liveness(
    flags: LivenessFlags,
    *,
    config_path: Path | None,
    env: Mapping[str, str],
    out: TextIO | None = None,
    err: TextIO | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    min_write_interval: float = MIN_WRITE_INTERVAL,
) -> int:
    """The `driftgate watch liveness` command."""
    config = load_config(env, config_path)
    command = LivenessCommand(
        flags,
        config,
        env,
        out or sys.stdout,
        err or sys.stderr,
        clock=clock,
        min_write_interval=min_write_interval,
    )
    return command.run()
