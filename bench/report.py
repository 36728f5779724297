"""Turn measurements into the side-by-side tables, the PASS/FAIL lines and latest.json."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wrk_runner import WrkResult

# Issue 8's targets for driftgate on the 2-core machine, in every scenario: >= 1.1x the minimal
# passthrough's throughput and >= 80x LiteLLM's.
MIN_VS_MINIMAL = 1.1
# Across scenarios, driftgate's row in one against its row in another, in the same run:
# (scenario, baseline scenario, measure, limit). "rps": req/s ratio (>= limit);
# "cpu": CPU us/req ratio (<= limit); "cpu-rps": the req/s ratio CPU per request implies on one
# core, baseline CPU / scenario CPU (>= limit), the contention-proof view of an "rps" target.
CROSS_CHECKS: tuple[tuple[str, str, str, float], ...] = (
    # issue 9: Responses -> Anthropic at least 0.9x Chat -> Anthropic
    ("responses-translate", "translate-openai", "rps", 0.9),
    ("responses-translate", "translate-openai", "cpu-rps", 0.9),
    # issue 9: every translated stream within 1.3x the CPU of its client's same-dialect stream
    ("translate-stream", "stream", "cpu", 1.3),
    ("translate-stream-openai", "stream-openai", "cpu", 1.3),
    ("responses-translate-stream", "responses-stream", "cpu", 1.3),
    ("responses-bridge-stream", "responses-stream", "cpu", 1.3),
)
# Per scenario, driftgate against minimal by CPU per request, where an issue set a req/s floor:
# the same floor on the req/s that CPU per request implies on one core.
MIN_VS_MINIMAL_BY_CPU_FOR = {"responses": 1.1}
# The issue 9 targets, listed together whether or not their scenarios ran (n/a says which to run).
ISSUE9_SCENARIOS = (
    "responses", "responses-translate", "translate-openai", "stream", "stream-openai",
    "responses-stream", "translate-stream", "translate-stream-openai",
    "responses-translate-stream", "responses-bridge-stream",
)  # fmt: skip
MIN_OBSERVE_ON_VS_OFF = 0.9  # issue 12: analytics + metrics on keep >= 0.9x the req/s of both off
MIN_VS_LITELLM = 80.0
MAX_ADDED_P50_MS = 0.5
MAX_IDLE_RSS_MB = 80.0
MIN_POSTGRES_VS_SQLITE = 0.9  # issue 13: [analytics] database_url keeps >= 0.9x the SQLite default
MIN_SHAPES_ON_VS_OFF = 0.95  # the shape log (on by default) against [shapes] enabled = false
MIN_REDIS_GUARD_VS_EMBEDDED = 0.9  # issue 13: the guard's state in Redis against its embedded store
MIN_GUARD_ON_VS_OFF = 0.9  # the spend guard on (reserve + settle every request) against off
MAX_WORKERS_CPU_VS_ONE = 1.1  # issue 13: --workers 2 within 1.1x one worker's CPU per request


@dataclass
class Row:
    """One target in one scenario: the c16 throughput run and the c1 latency run, or why not."""

    target: str
    load: WrkResult | None = None
    latency: WrkResult | None = None
    error: str | None = None
    cpu_us: float | None = None  # the target's CPU time per request during the c16 run

    @property
    def rps(self) -> float | None:
        """Requests per second at 16 connections."""
        return self.load.rps if self.load and self.load.clean else None

    @property
    def p50_ms(self) -> float | None:
        """Median latency at 1 connection."""
        return self.latency.p50_ms if self.latency and self.latency.clean else None


def best_of(rows: list[Row]) -> Row:
    """One row from several rounds: the highest clean throughput and the lowest clean p50."""
    loads = [r.load for r in rows if r.load and r.load.clean]
    lats = [r.latency for r in rows if r.latency and r.latency.clean]
    errors = [r.error for r in rows if r.error]
    best = Row(rows[0].target if rows else "?")
    best.load = (
        max(loads, key=lambda w: w.rps) if loads else next((r.load for r in rows if r.load), None)
    )
    best.latency = (
        min(lats, key=lambda w: w.p50_ms)
        if lats
        else next((r.latency for r in rows if r.latency), None)
    )
    if errors and not (loads and lats):
        best.error = errors[0]
    cpus = [r.cpu_us for r in rows if r.cpu_us is not None and r.load and r.load.clean]
    best.cpu_us = min(cpus) if cpus else None
    return best


@dataclass(frozen=True)
class Check:
    """One target compared with its threshold."""

    scenario: str
    what: str
    value: float | None
    limit: float
    higher_is_better: bool

    @property
    def verdict(self) -> str:
        """PASS, FAIL or n/a (a row it needs was not measured)."""
        if self.value is None:
            return "n/a"
        ok = self.value >= self.limit if self.higher_is_better else self.value <= self.limit
        return "PASS" if ok else "FAIL"

    def line(self) -> str:
        """`what: 1.23 (limit >= 1.1) PASS`."""
        op = ">=" if self.higher_is_better else "<="
        shown = "-" if self.value is None else f"{self.value:.2f}"
        return f"{self.what} {op} {self.limit:g}: {shown} {self.verdict}"


@dataclass
class ScenarioResult:
    """Every row of one scenario."""

    name: str
    title: str
    rows: dict[str, Row] = field(default_factory=dict)
    # Each row's CPU µs per request in every round, in order (None: that round had no clean run)
    cpu_rounds: dict[str, list[float | None]] = field(default_factory=dict)

    def paired_cpu_ratios(self, a: str, b: str) -> list[float]:
        """cpu_us(a) / cpu_us(b) round by round: the rows of one round ran seconds apart, so a
        burst of outside load that lasted a round weighs on both sides of its ratio."""
        pairs = zip(self.cpu_rounds.get(a, []), self.cpu_rounds.get(b, []), strict=False)
        return [x / y for x, y in pairs if x is not None and y]

    def ratio(self, a: str, b: str) -> float | None:
        """rps(a) / rps(b), when both were measured."""
        ra, rb = self._rps(a), self._rps(b)
        return ra / rb if ra is not None and rb else None

    def cpu_ratio(self, a: str, b: str) -> float | None:
        """cpu_us(a) / cpu_us(b): the throughput ratio b/a implied by CPU time per request."""
        ra, rb = self.rows.get(a), self.rows.get(b)
        if ra is None or rb is None or ra.cpu_us is None or not rb.cpu_us:
            return None
        return ra.cpu_us / rb.cpu_us

    def added_p50(self, target: str) -> float | None:
        """p50(target) - p50(direct) at 1 connection, in ms."""
        t, d = self._p50(target), self._p50("direct")
        return t - d if t is not None and d is not None else None

    def _rps(self, name: str) -> float | None:
        row = self.rows.get(name)
        return row.rps if row else None

    def _p50(self, name: str) -> float | None:
        row = self.rows.get(name)
        return row.p50_ms if row else None

    def checks(self) -> list[Check]:
        """driftgate against the issue's targets in this scenario."""
        out = [
            Check(
                self.name,
                "driftgate req/s vs minimal",
                self.ratio("driftgate", "minimal"),
                MIN_VS_MINIMAL,
                True,
            ),
            Check(
                self.name,
                "driftgate added p50 ms",
                self.added_p50("driftgate"),
                MAX_ADDED_P50_MS,
                False,
            ),
        ]
        floor = MIN_VS_MINIMAL_BY_CPU_FOR.get(self.name)
        if floor is not None:
            out.append(Check(self.name, "driftgate req/s vs minimal, by CPU us/req",
                             self.cpu_ratio("minimal", "driftgate"), floor, True))  # fmt: skip
        if "driftgate-observe-off" in self.rows:
            out.append(Check(self.name, "driftgate req/s analytics+metrics on vs off",
                             self.ratio("driftgate", "driftgate-observe-off"), MIN_OBSERVE_ON_VS_OFF,
                             True))  # fmt: skip
        if "litellm" in self.rows:
            out.insert(1, Check(self.name, "driftgate req/s vs litellm", self.ratio("driftgate", "litellm"),
                                MIN_VS_LITELLM, True))  # fmt: skip
        if "driftgate-guard-redis" in self.rows and "driftgate-guard" in self.rows:
            out.append(Check(self.name, "driftgate req/s guard in Redis vs embedded",
                             self.ratio("driftgate-guard-redis", "driftgate-guard"),
                             MIN_REDIS_GUARD_VS_EMBEDDED, True))  # fmt: skip
        if "driftgate-postgres" in self.rows:
            out.append(Check(self.name, "driftgate req/s PostgreSQL analytics vs SQLite",
                             self.ratio("driftgate-postgres", "driftgate"), MIN_POSTGRES_VS_SQLITE,
                             True))  # fmt: skip
        if "driftgate-shapes-off" in self.rows:
            out.append(Check(self.name, "driftgate req/s vs shape log off",
                             self.ratio("driftgate", "driftgate-shapes-off"), MIN_SHAPES_ON_VS_OFF,
                             True))  # fmt: skip
        if "driftgate-guard" in self.rows:
            out.append(Check(self.name, "driftgate req/s spend guard on vs off",
                             self.ratio("driftgate-guard", "driftgate"), MIN_GUARD_ON_VS_OFF,
                             True))  # fmt: skip
        if "driftgate-workers-2" in self.rows:
            out.append(Check(self.name, "driftgate --workers 2 CPU/req vs 1 worker",
                             self.cpu_ratio("driftgate-workers-2", "driftgate"),
                             MAX_WORKERS_CPU_VS_ONE, False))  # fmt: skip
        if "driftgate-workers-2-guard" in self.rows and "driftgate-guard" in self.rows:
            out.append(Check(self.name, "driftgate --workers 2 CPU/req vs 1 worker, guard on",
                             self.cpu_ratio("driftgate-workers-2-guard", "driftgate-guard"),
                             MAX_WORKERS_CPU_VS_ONE, False))  # fmt: skip
        return out


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _label(name: str, labels: dict[str, str]) -> str:
    return "direct (fake upstream)" if name == "direct" else labels.get(name, name)


def table(result: ScenarioResult, labels: dict[str, str]) -> str:
    """The Markdown table of one scenario, followed by its PASS/FAIL lines."""
    head = (
        "| target | req/s @16 | p50 @1 (ms) | added p50 (ms) | x minimal | x litellm "
        "| CPU µs/req | note |"
    )
    rule = "|---|---:|---:|---:|---:|---:|---:|---|"
    lines = [f"### {result.name}: {result.title}", "", head, rule]
    for name, row in result.rows.items():
        note = row.error or ""
        for run in (row.load, row.latency):
            if run and not run.clean:
                note += f" c{run.connections}: {run.errors} socket errors, {run.bad_status} bad statuses"
        lines.append(
            f"| {_label(name, labels)} | {_num(row.rps, ',.0f')} | {_num(row.p50_ms, '.3f')} | "
            f"{_num(result.added_p50(name), '+.3f')} | {_num(result.ratio(name, 'minimal'), '.2f')} | "
            f"{_num(result.ratio(name, 'litellm'), '.1f')} | {_num(row.cpu_us, ',.0f')} | "
            f"{note.strip()[:120]} |"
        )
    lines.append("")
    lines += [f"- {c.line()}" for c in result.checks()]
    observe = result.cpu_ratio("driftgate-observe-off", "driftgate")
    if observe is not None:
        lines.append(
            f"- (by CPU per request, analytics+metrics on keep {observe:.2f}x the throughput of off)"
        )
    guard = result.cpu_ratio("driftgate", "driftgate-guard")
    if guard is not None:
        lines.append(
            f"- (by CPU per request, the spend guard on keeps {guard:.2f}x the throughput of off)"
        )
    redis = result.cpu_ratio("driftgate-guard", "driftgate-guard-redis")
    if redis is not None:
        lines.append(
            f"- (by CPU per request, the guard in Redis keeps {redis:.2f}x the throughput of the "
            "embedded store; Redis itself runs beside wrk and the upstream)"
        )
    implied = result.cpu_ratio("minimal", "driftgate")
    if implied is not None:
        lines.append(
            f"- (contention-proof view: driftgate's CPU per request implies {implied:.2f}x "
            "minimal's throughput on one core)"
        )
    before = result.cpu_ratio("driftgate", "driftgate-baseline")
    if before is not None:
        lines.append(f"- (driftgate's CPU per request is {before:.2f}x the baseline build's)")
    pg = result.cpu_ratio("driftgate", "driftgate-postgres")
    if pg is not None:
        lines.append(
            f"- (by CPU per request, PostgreSQL analytics keep {pg:.2f}x the SQLite default's "
            "throughput)"
        )
    before = result.cpu_ratio("driftgate-postgres", "driftgate-postgres-baseline")
    if before is not None:
        lines.append(
            f"- (the PostgreSQL row's CPU per request is {before:.2f}x the baseline build's)"
        )
    spread = result.cpu_ratio("driftgate-workers-2-spread", "driftgate")
    if spread is not None:
        lines.append(
            f"- (--workers 2 on CPUs 0-1, beside the upstream and wrk: CPU per request {spread:.2f}x "
            "one process's; not checked)"
        )
    for row in ("driftgate-workers-2", "driftgate-workers-2-spread"):
        paired = result.paired_cpu_ratios(row, "driftgate")
        if len(paired) > 1:
            shown = ", ".join(f"{x:.2f}" for x in paired)
            lines.append(
                f"- ({row} CPU per request against one process's, round by round: {shown}; "
                f"median {statistics.median(paired):.2f})"
            )
    for row, what in (
        ("driftgate-guard", "guard on"),
        ("driftgate-workers-2", "--workers 2"),
        ("driftgate-workers-2-guard", "--workers 2, guard on"),
    ):
        before = result.cpu_ratio(row, f"{row}-baseline")
        if before is not None:
            lines.append(
                f"- (driftgate {what}: CPU per request {before:.2f}x the baseline build's)"
            )
    return "\n".join(lines)


def rss_table(rss: dict[str, dict[str, float | None]], labels: dict[str, str]) -> str:
    """Idle RSS (after start-up and one request) and RSS after the load, per target."""
    lines = [
        "### memory",
        "",
        "| target | idle RSS (MB) | RSS after load (MB) |",
        "|---|---:|---:|",
    ]
    for name, v in rss.items():
        lines.append(
            f"| {_label(name, labels)} | {_num(v.get('idle'), '.1f')} | {_num(v.get('after'), '.1f')} |"
        )
    idle = rss.get("driftgate", {}).get("idle")
    lines += [
        "",
        f"- {Check('memory', 'driftgate idle RSS MB', idle, MAX_IDLE_RSS_MB, False).line()}",
    ]
    return "\n".join(lines)


def all_checks(
    results: list[ScenarioResult], rss: dict[str, dict[str, float | None]]
) -> list[Check]:
    """Every check of the run, the memory one last."""
    out = [c for r in results for c in r.checks()]
    out.extend(cross_checks(results))
    out.append(
        Check(
            "memory",
            "driftgate idle RSS MB",
            rss.get("driftgate", {}).get("idle"),
            MAX_IDLE_RSS_MB,
            False,
        )
    )
    return out


def cross_checks(results: list[ScenarioResult], *, missing: bool = False) -> list[Check]:
    """driftgate in one scenario against driftgate in another (CROSS_CHECKS).

    Only pairs where both ran, unless `missing`: then a pair that did not run is an n/a line
    naming the scenarios to run.
    """
    by_name = {r.name: r.rows.get("driftgate") for r in results}
    out: list[Check] = []
    for name, base, measure, limit in CROSS_CHECKS:
        ran = name in by_name and base in by_name
        if not ran and not missing:
            continue
        row, other = by_name.get(name), by_name.get(base)
        value: float | None = None
        if measure == "rps" and row and other and row.rps and other.rps:
            value = row.rps / other.rps
        elif measure == "cpu" and row and other and row.cpu_us and other.cpu_us:
            value = row.cpu_us / other.cpu_us
        elif measure == "cpu-rps" and row and other and row.cpu_us and other.cpu_us:
            value = other.cpu_us / row.cpu_us
        what = {
            "rps": f"driftgate req/s vs driftgate in {base}",
            "cpu": f"driftgate CPU us/req vs driftgate in {base}",
            "cpu-rps": f"driftgate req/s implied by CPU us/req vs driftgate in {base}",
        }[measure]
        if not ran:
            what += f" (not run: --only {name} --only {base})"
        out.append(Check(name, what, value, limit, measure != "cpu"))
    return out


def issue9_checks(results: list[ScenarioResult]) -> list[Check]:
    """Every issue 9 target of this run, each with its verdict (n/a when its scenarios did not run)."""
    by_name = {r.name: r for r in results}
    responses = by_name.get("responses")
    out = [
        c
        for c in (responses.checks() if responses else [])
        if c.what.startswith("driftgate req/s vs minimal") or "by CPU" in c.what
    ]
    if responses is None:
        out.append(Check("responses", "driftgate req/s vs minimal (not run: --only responses)",
                         None, MIN_VS_MINIMAL, True))  # fmt: skip
    return [*out, *cross_checks(results, missing=True)]


def issue9_block(results: list[ScenarioResult]) -> str:
    """The issue 9 targets as PASS/FAIL lines, each with its scenario, and the CPU ratios again
    with each scenario's driftgate row divided by its minimal row (see `minimal_normalised`)."""
    lines = ["### issue 9 targets (speed of the Responses API and of translated streams)", ""]
    lines += [f"- {c.scenario}: {c.line()}" for c in issue9_checks(results)]
    for name, base, value in minimal_normalised(results):
        lines.append(f"- ({name} vs {base}, CPU us/req with each scenario's driftgate row divided "
                     f"by its minimal row: {value:.2f})")  # fmt: skip
    return "\n".join(lines)


def minimal_normalised(results: list[ScenarioResult]) -> list[tuple[str, str, float]]:
    """Each "cpu" cross check's ratio, driftgate's CPU per request divided by minimal's in each
    scenario first. Minimal does the same untranslated work in a translated scenario as in its
    same-dialect one, so a burst of outside load during one scenario cancels out."""
    by_name = {r.name: r.rows for r in results}
    out: list[tuple[str, str, float]] = []
    for name, base, measure, _ in CROSS_CHECKS:
        if measure != "cpu" or name not in by_name or base not in by_name:
            continue
        cpus = [by_name[n].get(t) for n in (name, base) for t in ("driftgate", "minimal")]
        if all(r is not None and r.cpu_us for r in cpus):
            dg, mn, dg_base, mn_base = (r.cpu_us for r in cpus if r is not None)
            assert dg and mn and dg_base and mn_base
            out.append((name, base, (dg / mn) / (dg_base / mn_base)))
    return out


def write_json(path: Path, meta: dict[str, Any], results: list[ScenarioResult],
               rss: dict[str, dict[str, float | None]]) -> None:  # fmt: skip
    """Write the whole run (raw wrk numbers included) to `path`."""
    doc: dict[str, Any] = {"meta": meta, "rss_mb": rss, "scenarios": {}}
    for r in results:
        doc["scenarios"][r.name] = {
            "title": r.title,
            "rows": {
                name: {
                    "rps_c16": row.rps,
                    "p50_ms_c1": row.p50_ms,
                    "added_p50_ms": r.added_p50(name),
                    "x_minimal": r.ratio(name, "minimal"),
                    "x_litellm": r.ratio(name, "litellm"),
                    "cpu_us_per_req": row.cpu_us,
                    "cpu_us_per_req_rounds": r.cpu_rounds.get(name),
                    "x_minimal_by_cpu": r.cpu_ratio("minimal", name),
                    "error": row.error,
                    "wrk_c16": asdict(row.load) if row.load else None,
                    "wrk_c1": asdict(row.latency) if row.latency else None,
                }
                for name, row in r.rows.items()
            },
        }
    doc["checks"] = [asdict(c) | {"verdict": c.verdict} for c in all_checks(results, rss)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
