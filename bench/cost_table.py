"""Issues 8 and 9's speed targets from a cost a request (instructions or CPU time), not req/s.

Each scenario has a list of costs for `driftgate` and one for `minimal`, paired by position (the
i-th of each measured side by side: one instruction count each, or one round of CPU time). On one
core, throughput is the inverse of the cost a request, so "driftgate >= 1.1x the minimal's
throughput" reads as minimal's cost / driftgate's >= 1.1; a ratio is the median of the paired
ratios, with their spread.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from report import CROSS_CHECKS, MIN_VS_MINIMAL, Check

Costs = Mapping[str, Mapping[str, Sequence[float]]]  # scenario -> target -> costs, paired


@dataclass(frozen=True)
class Ratio:
    """The median of paired ratios a[i] / b[i], and the lowest and highest of them."""

    median: float
    low: float
    high: float
    count: int

    def spread(self) -> str:
        """`1.08-1.21 (5)`, or an empty string for a single pair."""
        return "" if self.count < 2 else f"{self.low:.2f}-{self.high:.2f} ({self.count})"


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> Ratio | None:
    """a[i] / b[i] over the pairs both have (None when there is none)."""
    ratios = [x / y for x, y in zip(a, b, strict=False) if y]
    if not ratios:
        return None
    return Ratio(statistics.median(ratios), min(ratios), max(ratios), len(ratios))


def vs_minimal(costs: Costs, scenario: str) -> Ratio | None:
    """minimal's cost / driftgate's in `scenario`: the throughput ratio on one core (issue 8)."""
    rows = costs.get(scenario, {})
    return paired_ratio(rows.get("minimal", ()), rows.get("driftgate", ()))


def target_checks(costs: Costs) -> list[tuple[Check, Ratio | None]]:
    """Issue 8's >= 1.1x minimal in every scenario, then issue 9's cross-scenario targets.

    A cross target compares driftgate in two scenarios (CROSS_CHECKS, the same list
    bench/gateway.py checks by req/s and CPU): "cpu" as cost / base cost (<= limit), "cpu-rps"
    as base cost / cost (>= limit); "rps" is "cpu-rps" here and is left out.
    """
    out: list[tuple[Check, Ratio | None]] = []
    for scenario in costs:
        ratio = vs_minimal(costs, scenario)
        value = ratio.median if ratio else None
        what = "driftgate vs minimal (minimal's cost / driftgate's)"
        out.append((Check(scenario, what, value, MIN_VS_MINIMAL, True), ratio))
    for name, base, measure, limit in CROSS_CHECKS:
        if measure == "rps" or name not in costs or base not in costs:
            continue
        mine, theirs = costs[name].get("driftgate", ()), costs[base].get("driftgate", ())
        if measure == "cpu":
            ratio = paired_ratio(mine, theirs)
            what = f"driftgate's cost vs driftgate's in {base}"
        else:
            ratio = paired_ratio(theirs, mine)
            what = f"driftgate in {base}: its cost / this one's"
        value = ratio.median if ratio else None
        out.append((Check(name, what, value, limit, measure != "cpu"), ratio))
    return out


def markdown(costs: Costs, unit: str, show: Callable[[float], str]) -> str:
    """The side-by-side table (medians of each target's costs) and a PASS/FAIL line per target."""
    lines = [
        f"| scenario | driftgate {unit} | minimal {unit} | minimal / driftgate | spread | verdict |",
        "|---|---:|---:|---:|---|---|",
    ]
    checks = target_checks(costs)
    for check, ratio in checks[: len(costs)]:
        rows = costs[check.scenario]
        cells = [
            show(statistics.median(rows[t])) if rows.get(t) else "-"
            for t in ("driftgate", "minimal")
        ]
        shown = "-" if ratio is None else f"{ratio.median:.2f}"
        spread = "" if ratio is None else ratio.spread()
        lines.append(f"| {check.scenario} | {cells[0]} | {cells[1]} | {shown} | {spread} | "
                     f"{check.verdict} |")  # fmt: skip
    lines += ["", "Issue 9 (driftgate against itself in another scenario):", ""]
    for check, ratio in checks[len(costs) :]:
        spread = "" if ratio is None or ratio.count < 2 else f" (spread {ratio.spread()})"
        lines.append(f"- {check.scenario}: {check.line()}{spread}")
    return "\n".join(lines)
