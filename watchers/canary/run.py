"""One canary pass: send the planned probes (within the budget), judge each answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from driftgate.proxy.config import BackendConfig
from driftgate.watchers.canary.checks import Outcome, judge
from driftgate.watchers.canary.probes import Probe
from driftgate.watchers.canary.send import probe_headers, probe_url, send


@dataclass(frozen=True)
class BackendProbes:
    """One backend, the template its models come from, and the probes planned for it."""

    backend: BackendConfig
    template: str
    probes: tuple[Probe, ...]
    api_version: str | None = None
    # Capabilities its template claims that no probe exists for: named, never silently skipped.
    unprobed: tuple[str, ...] = ()


@dataclass
class CanaryResult:
    """Every outcome of a pass, by backend."""

    outcomes: dict[str, list[Outcome]] = field(default_factory=dict)

    def all(self) -> list[Outcome]:
        """Every outcome, in the order sent."""
        return [o for found in self.outcomes.values() for o in found]

    def divergences(self, backend: str | None = None) -> list[Outcome]:
        """The outcomes that show drift (of one backend, or all)."""
        found = self.outcomes.get(backend, []) if backend else self.all()
        return [o for o in found if o.verdict == "diverged"]

    def errors(self) -> list[Outcome]:
        """The outcomes that said nothing about drift (transport, auth, limits, 5xx)."""
        return [o for o in self.all() if o.verdict == "error"]


def run_backend(
    client: httpx.Client,
    plan: BackendProbes,
    key: str,
    progress: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Send one backend's probes in order; a model found retired has its other probes skipped."""
    url = probe_url(plan.backend)
    headers = probe_headers(plan.backend, key, plan.api_version)
    retired: set[str] = set()
    rate_checked = False
    out: list[Outcome] = []
    for probe in plan.probes:
        if probe.model in retired:
            outcome = Outcome(probe, "skipped", None, f"{probe.model} is not served")
        else:
            answer = send(client, url, headers, probe)
            check_rate = not rate_checked and answer.status == 200
            outcome = judge(probe, answer, check_rate_headers=check_rate)
            rate_checked = rate_checked or check_rate
            if outcome.finding == "model-retired":
                retired.add(probe.model)
        out.append(outcome)
        if progress is not None:
            progress(outcome)
    return out


def run_probes(
    client: httpx.Client,
    plans: Sequence[BackendProbes],
    keys: dict[str, str],
    progress: Callable[[Outcome], None] | None = None,
) -> CanaryResult:
    """Probe every backend in `plans` with its key."""
    result = CanaryResult()
    for plan in plans:
        result.outcomes[plan.backend.name] = run_backend(
            client, plan, keys[plan.backend.name], progress
        )
    return result
