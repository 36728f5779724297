"""After a canary pass with no errors: fix PRs per template, then one alert per backend (raised,
or closed on recovery), all through the one publisher."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from driftgate.watchers.canary.alert import LABEL, alert_key, alert_plan, recovery_comment
from driftgate.watchers.canary.checks import Outcome
from driftgate.watchers.canary.fixes import fix_plan
from driftgate.watchers.canary.run import BackendProbes, CanaryResult
from driftgate.watchers.github import api_errors
from driftgate.watchers.publish import Publisher
from driftgate.watchers.template_sources import RepoTemplates, TemplateSource


def repo_templates(publisher: Publisher) -> RepoTemplates:
    """The approved templates on the repository's default branch (what a fix PR changes)."""

    def default_branch() -> str:
        with api_errors("reading the repository's default branch"):
            return str(publisher.repository().default_branch)

    return RepoTemplates(publisher.checkout, default_branch)


def publish_outcome(
    plans: list[BackendProbes],
    result: CanaryResult,
    publisher: Publisher,
    approved: TemplateSource,
    report: dict[str, Any],
    *,
    run_url: str | None,
    say: Callable[[str], None],
) -> None:
    """Fix PRs per template, then one alert per backend (raised, or closed on recovery)."""
    publisher.open_alerts(LABEL)  # read before any write: a failed read changes nothing
    fix_urls: dict[str, str] = {}
    by_template: dict[str, list[Outcome]] = {}
    for plan in plans:
        by_template.setdefault(plan.template, []).extend(result.divergences(plan.backend.name))
    for template, found in by_template.items():
        if not any(o.finding in ("model-retired", "capability-refused") for o in found):
            continue
        pr = fix_plan(template, approved.read(template), found, run_url=run_url)
        if pr is not None:
            done = publisher.publish(pr)
            report["pull_requests"].append(
                {
                    "template": template,
                    "action": done.action,
                    "number": done.number,
                    "url": done.url,
                }
            )
            say(f"  fix PR for {template}: {done.action} {done.url or ''}".rstrip())
            if done.url:
                fix_urls[template] = done.url
    for plan in plans:
        name = plan.backend.name
        found = result.divergences(name)
        if found:
            alert = publisher.raise_alert(
                alert_plan(name, found, run_url=run_url, fix_url=fix_urls.get(plan.template))
            )
        else:
            alert = publisher.clear_alert(
                alert_key(name), LABEL, recovery_comment(name, len(plan.probes), run_url)
            )
        report["alerts"].append(
            {"backend": name, "action": alert.action, "number": alert.number, "url": alert.url}
        )
        if alert.action != "none":
            say(f"  alert for {name}: {alert.action} {alert.url or ''}".rstrip())
