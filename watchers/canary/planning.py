"""Which backends the canary probes, the probes of each, and the share of --max-probes each gets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from driftgate.proxy.config import BackendConfig, Config, default_backends
from driftgate.proxy.errors import ConfigError
from driftgate.watchers.canary.probes import TEMPLATE_FOR_KIND, Probe, plan_probes, unprobed
from driftgate.watchers.canary.run import BackendProbes
from driftgate.watchers.template_sources import DirectoryTemplates


def chosen_backends(
    config: Config, names: Sequence[str], env: Mapping[str, str]
) -> list[BackendConfig]:
    """The backends to probe: --backend names, else every configured one of a probed kind."""
    configured = list(config.backends) or list(default_backends(env))
    if names:
        known = {b.name: b for b in configured}
        missing = [n for n in names if n not in known]
        if missing:
            raise ConfigError(
                f"--backend {', '.join(missing)}: not a configured backend "
                f"(configured: {', '.join(known) or 'none'})"
            )
        return [known[n] for n in dict.fromkeys(names)]
    return [b for b in configured if b.kind in TEMPLATE_FOR_KIND]


def plan_all(
    backends: Sequence[BackendConfig], templates: DirectoryTemplates
) -> list[BackendProbes]:
    """Probes per backend, from the template of its kind."""
    plans = []
    for backend in backends:
        name = TEMPLATE_FOR_KIND.get(backend.kind)
        if name is None:
            continue
        doc = templates.read(name)
        api = doc.get("api") or {}
        version = api.get("version") if isinstance(api, Mapping) else None
        plans.append(
            BackendProbes(
                backend,
                name,
                tuple(plan_probes(backend, doc)),
                version or None,
                tuple(sorted(unprobed(backend, doc))),
            )
        )
    return plans


def _tier(probe: Probe) -> int:
    return 0 if probe.check == "served" else 2 if probe.check.startswith("beta:") else 1


def cap(plans: list[BackendProbes], max_probes: int) -> tuple[list[BackendProbes], list[Probe]]:
    """At most `max_probes` in all: every backend's served probes first, then capabilities, then
    betas, so one backend's long list never starves another's; the rest are not sent."""
    ranked = sorted(
        (_tier(probe), j, i) for i, plan in enumerate(plans) for j, probe in enumerate(plan.probes)
    )
    chosen = {(i, j) for _tier_, j, i in ranked[:max_probes]}
    kept = [
        replace(plan, probes=tuple(p for j, p in enumerate(plan.probes) if (i, j) in chosen))
        for i, plan in enumerate(plans)
    ]
    dropped = [
        p for i, plan in enumerate(plans) for j, p in enumerate(plan.probes) if (i, j) not in chosen
    ]
    return kept, dropped
