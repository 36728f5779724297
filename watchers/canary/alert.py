"""The canary's alert issue for one backend: what diverged, the fix PR if any, what to do."""

from __future__ import annotations

from collections.abc import Sequence

from driftgate.watchers.alerts import AlertPlan, alert_fingerprint
from driftgate.watchers.canary.checks import Outcome

LABEL = "drift:canary"
RUNBOOK = "runbooks/canary.md"


def alert_key(backend: str) -> str:
    """One alert per backend."""
    return f"canary:{backend}"


def alert_plan(
    backend: str,
    found: Sequence[Outcome],
    *,
    run_url: str | None,
    fix_url: str | None,
    runbook: str = RUNBOOK,
) -> AlertPlan:
    """The issue for `backend`'s divergences; its fingerprint ignores wording and request ids."""
    facts = sorted({(o.probe.model, o.probe.check, o.finding or "") for o in found})
    rows = [
        f"| `{o.probe.model}` | `{o.probe.check}` | {o.finding} | {o.detail.replace('|', '/')} |"
        for o in found
    ]
    lines = [
        f"The canary's probes of backend `{backend}` found the live API no longer behaving as "
        "its template says.",
        "",
        "| model | probe | divergence | what the API said |",
        "|---|---|---|---|",
        *rows,
        "",
    ]
    if fix_url:
        lines += [f"A template fix is proposed in {fix_url}.", ""]
    if run_url:
        lines += [f"Run: {run_url}", ""]
    lines += [
        f"What to do: [{RUNBOOK}]({runbook}#answering-a-canary-alert). The first later canary run "
        "whose probes all pass closes this issue.",
    ]
    summary = ", ".join(f"{m} {c}: {f}" for m, c, f in facts[:5])
    more = f" (+{len(facts) - 5} more)" if len(facts) > 5 else ""
    return AlertPlan(
        key=alert_key(backend),
        label=LABEL,
        title=f"canary: backend {backend} diverged from its template ({len(facts)} finding(s))",
        body="\n".join(lines),
        fingerprint=alert_fingerprint([list(f) for f in facts]),
        repeat_comment=f"Still diverging{' (' + run_url + ')' if run_url else ''}: {summary}{more}",
    )


def recovery_comment(backend: str, probes: int, run_url: str | None) -> str:
    """What the issue says when the canary passes again."""
    where = f" in {run_url}" if run_url else ""
    return f"Recovered: all {probes} probes of backend `{backend}` passed{where}. Closing."
