"""Where a divergence is a template change (a model retired, a capability refused): the candidate
template and the pull request that proposes it, through the one publisher."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from driftgate.proxy.templates import canonical_json, validate_template
from driftgate.watchers.canary.checks import Outcome
from driftgate.watchers.diff import diff_templates, fingerprint, render_markdown
from driftgate.watchers.publish import PullRequestPlan

RUNBOOK = "runbooks/canary.md"


def candidate_for(approved: Mapping[str, Any], found: Sequence[Outcome]) -> dict[str, Any] | None:
    """The approved template with the fixable divergences applied; None when nothing changes."""
    doc = copy.deepcopy(dict(approved))
    models = doc.get("models") or {}
    for outcome in found:
        model = models.get(outcome.probe.model)
        if outcome.finding == "model-retired":
            models.pop(outcome.probe.model, None)
        elif outcome.finding == "capability-refused" and isinstance(model, dict):
            model.setdefault("capabilities", {})[outcome.probe.check] = False
    if canonical_json(doc) == canonical_json(approved):
        return None
    validate_template(doc, "canary candidate")
    return doc


def fix_plan(
    template: str,
    approved: Mapping[str, Any],
    found: Sequence[Outcome],
    *,
    run_url: str | None,
    runbook: str = RUNBOOK,
) -> PullRequestPlan | None:
    """The PR for `template`'s fixable divergences (own branch driftgate/canary-TEMPLATE)."""
    fixable = [o for o in found if o.finding in ("model-retired", "capability-refused")]
    candidate = candidate_for(approved, fixable)
    if candidate is None:
        return None
    drift = diff_templates(approved, candidate)
    retired = sorted({o.probe.model for o in fixable if o.finding == "model-retired"})
    refused = sorted(
        {f"{o.probe.model} {o.probe.check}" for o in fixable if o.finding == "capability-refused"}
    )
    parts = [f"{len(retired)} model(s) retired"] if retired else []
    parts += [f"{len(refused)} capability(ies) refused"] if refused else []
    title = f"canary({template}): " + ", ".join(parts)
    aliases = approved.get("aliases") or {}
    lines = [
        "The daily canary probed the live API with a real key and found that it no longer "
        f"behaves as `proxy/templates/{template}.json` says.",
        "",
        "### What the probes saw",
        "",
        *[f"- **{o.finding}**: {o.detail}" for o in fixable],
        "",
    ]
    pointing = [f"`{a}` → `{t}`" for a, t in sorted(aliases.items()) if t in retired]
    if pointing:
        lines += [
            "### Aliases still naming a removed model",
            "",
            *[f"- {p}: re-point before merging" for p in pointing],
            "",
        ]
    lines += ["### Changes", "", render_markdown(drift).rstrip(), ""]
    if run_url:
        lines += [f"Canary run: {run_url}", ""]
    lines += [
        "### Reviewer checklist",
        "",
        f"- [ ] Read the runbook: [{RUNBOOK}]({runbook}#a-canary-fix-pull-request)",
        "- [ ] Confirm with the provider's deprecation notes or a manual request",
        "- [ ] CI and the compat gate are green",
        "",
    ]
    labels = ("drift", "drift:canary") + (("breaking",) if drift.severity == "breaking" else ())
    return PullRequestPlan(
        template=template,
        path=f"proxy/templates/{template}.json",
        content=canonical_json(candidate),
        title=title,
        body="\n".join(lines),
        labels=labels,
        commit_message=f"{title}\n\nFound by driftgate watch canary.\n",
        fingerprint=fingerprint(candidate),
        auto_merge=False,
        branch=f"driftgate/canary-{template}",
    )
