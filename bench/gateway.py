"""Benchmark driftgate against the upstream itself, a bare aiohttp passthrough and LiteLLM's proxy.

Starts the fast fake upstream, then each target in its own process, and drives every
scenario with wrk: requests/s at 16 connections and median latency at 1 connection.
Prints one table per scenario with PASS/FAIL against the issue's targets and writes
bench/results/latest.json (and latest.md). Not part of CI.

    .venv/bin/python bench/gateway.py                      # everything, ~5 minutes
    .venv/bin/python bench/gateway.py --skip-litellm --only openai --duration 3

Exit status: 0 when every target is met, 1 when one is missed, 2 when the run failed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import os
import platform
import shutil
import signal
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

import bench_postgres
import litellm_setup
from processes import BenchError, ProcessGroup, free_port, rss_mb
from report import (
    ISSUE9_SCENARIOS,
    Row,
    ScenarioResult,
    all_checks,
    issue9_block,
    rss_table,
    table,
    write_json,
)
from runner import (
    Plan,
    Running,
    idle_rss,
    measure_all,
    start_redis,
    start_target,
    start_upstream,
)
from scenarios import SCENARIOS
from targets import (
    DIRECT,
    DRIFTGATE,
    DRIFTGATE_AIOHTTP,
    DRIFTGATE_GUARD,
    DRIFTGATE_OBSERVE_OFF,
    DRIFTGATE_SHAPES_OFF,
    DRIFTGATE_WORKERS_2,
    DRIFTGATE_WORKERS_2_GUARD,
    DRIFTGATE_WORKERS_2_SPREAD,
    GUARD_ON,
    LITELLM,
    MINIMAL,
    MINIMAL_DRIFTGATE_CLIENT,
    MINIMAL_HTTPX,
    MINIMAL_HTTPX_AIOHTTP,
    baseline,
    driftgate_guard_redis,
    driftgate_postgres,
    guard_redis_toml,
    postgres_toml,
)
from wrk_runner import ensure_wrk

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The benchmark's flags."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--duration", type=float, default=5.0, help="seconds per measured wrk run (default 5)"
    )
    p.add_argument(
        "--warmup", type=float, default=1.0, help="seconds of unmeasured load before each scenario"
    )
    p.add_argument(
        "--skip-litellm", action="store_true", help="leave LiteLLM out (no install, no row)"
    )
    p.add_argument("--only", action="append", choices=[s.name for s in SCENARIOS], metavar="SCENARIO",
                   help=f"run only this scenario (repeatable): {', '.join(s.name for s in SCENARIOS)}")  # fmt: skip
    p.add_argument(
        "--with-clients",
        "--with-httpx",
        dest="with_clients",
        action="store_true",
        help="add rows: the minimal passthrough on driftgate's own upstream client, on httpx, "
        "and on httpx-aiohttp when installed (to compare upstream clients)",
    )
    p.add_argument(
        "--observe-off",
        action="store_true",
        help="add a row: driftgate with [analytics] and [metrics] off, measured in the same run "
        "(check: analytics + metrics on keep >= 0.9x its req/s)",
    )
    p.add_argument(
        "--postgres",
        action="store_true",
        help="add a row: driftgate with [analytics] database_url on a PostgreSQL the bench starts "
        "(Debian's postgresql, as the tests do), against the SQLite default (checks >= 0.9x)",
    )
    p.add_argument(
        "--shapes-off",
        action="store_true",
        help="add a row: driftgate with [shapes] enabled = false (checks on >= 0.95x off)",
    )
    p.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="add a row: driftgate from another checkout (e.g. `git worktree add DIR main`), to "
        "compare two builds in one run",
    )
    p.add_argument(
        "--redis-guard",
        action="store_true",
        help="add rows: driftgate with the spend guard on, its state embedded and in Redis "
        "(a redis-server the run starts), measured in the same run (check: Redis >= 0.9x)",
    )
    p.add_argument(
        "--guard-on",
        action="store_true",
        help="add a row: driftgate with the spend guard on ([guard] budgets no run reaches); "
        "checks on >= 0.9x the driftgate row, whose guard is off",
    )
    p.add_argument(
        "--workers-2",
        action="store_true",
        help="add a row: driftgate --workers 2 (checks CPU per request <= 1.1x one worker's)",
    )
    p.add_argument(
        "--workers-spread",
        action="store_true",
        help="with --workers-2: add a row with the two workers on CPUs 0-1 (beside the upstream "
        "and wrk) instead of the one CPU of every other row, to compare the pinnings in one run",
    )
    p.add_argument(
        "--targets", help="comma-separated rows to run (default all), e.g. minimal,driftgate"
    )
    p.add_argument(
        "--no-pin", action="store_true", help="do not pin processes to CPUs with taskset"
    )
    p.add_argument(
        "--driftgate-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra flag for `driftgate proxy` (repeatable), e.g. --driftgate-arg=--log-level=warning",
    )
    p.add_argument(
        "--rounds", type=int, default=1, help="rounds over all targets; each row keeps its best"
    )
    p.add_argument(
        "--json", type=Path, default=RESULTS / "latest.json", help="where to write the results"
    )
    return p.parse_args(argv)


def cpu_layout(no_pin: bool) -> tuple[int | None, int | None]:
    """(CPU for the target under test, CPU for upstream + wrk); None, None when not pinning."""
    if no_pin or (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        return None, None
    return 0, 1


def meta(
    args: argparse.Namespace, wrk: str, cpus: tuple[int | None, int | None], litellm: bool
) -> dict[str, Any]:
    """Where and how this run was made."""
    cpu_model = ""
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu_model = next(
            (ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), ""
        )
    wrk_version = subprocess.run(
        [wrk, "-v"], capture_output=True, text=True, check=False
    ).stdout.split("\n")[0]
    versions = {
        "python": platform.python_version(),
        "aiohttp": metadata.version("aiohttp"),
        "wrk": wrk_version.split(" [")[0],
    }
    with contextlib.suppress(metadata.PackageNotFoundError):
        versions["driftgate"] = metadata.version("driftgate")
    if litellm:
        found = list((litellm_setup.VENV / "lib").glob("python*/site-packages/litellm-*.dist-info"))
        if found:
            versions["litellm"] = found[0].name.split("-")[1].removesuffix(".dist")
    return {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": cpu_model,
        "cpus": os.cpu_count(),
        "duration_s": args.duration,
        "pinning": {"target": cpus[0], "upstream_and_wrk": cpus[1]},
        "versions": versions,
    }


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)  # `kill` cleans up like Ctrl-C does
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only]
    targets = [DIRECT, MINIMAL]
    if args.with_clients:
        targets.append(MINIMAL_DRIFTGATE_CLIENT)
        targets.append(MINIMAL_HTTPX)
        if importlib.util.find_spec("httpx_aiohttp") is not None:
            targets.append(MINIMAL_HTTPX_AIOHTTP)
    targets.append(DRIFTGATE)
    targets.append(DRIFTGATE_AIOHTTP)  # the same gateway on its other transport, side by side
    if args.baseline is not None:
        targets.append(baseline(args.baseline))
    if args.observe_off:
        targets.append(DRIFTGATE_OBSERVE_OFF)
    if args.shapes_off:
        targets.append(DRIFTGATE_SHAPES_OFF)
    redis_port = free_port() if args.redis_guard else None
    if redis_port is not None:
        targets.append(DRIFTGATE_GUARD)
        targets.append(driftgate_guard_redis(f"redis://127.0.0.1:{redis_port}/0"))
        if args.baseline is not None:  # the other build's guard in Redis, on its own keys
            url = f"redis://127.0.0.1:{redis_port}/0"
            targets.append(
                baseline(args.baseline, guard_redis_toml(url, "base:"), "-guard-redis",
                         " (guard in Redis)")
            )  # fmt: skip
    if args.guard_on and DRIFTGATE_GUARD not in targets:
        targets.append(DRIFTGATE_GUARD)  # against the driftgate row, whose guard is off
    if args.baseline is not None and DRIFTGATE_GUARD in targets:
        targets.append(baseline(args.baseline, GUARD_ON, "-guard", " (guard)"))
    postgres = None
    if args.postgres:
        try:
            postgres = bench_postgres.start()
        except RuntimeError as exc:
            print(f"bench: --postgres: {exc}", file=sys.stderr)
            return 2
        targets.append(driftgate_postgres(postgres.url))
        if args.baseline is not None:  # the other build's PostgreSQL row, same run
            base_url = postgres.database("driftgate_bench_baseline")
            targets.append(
                baseline(
                    args.baseline, postgres_toml(base_url), "-postgres", " (PostgreSQL analytics)"
                )
            )
    if args.workers_2:
        targets.append(DRIFTGATE_WORKERS_2)
        if args.workers_spread:
            targets.append(DRIFTGATE_WORKERS_2_SPREAD)
        if args.baseline is not None:
            targets.append(baseline(args.baseline, "", "-workers-2", " (--workers 2)", 2))
        if DRIFTGATE_GUARD in targets:  # --guard-on or --redis-guard: two workers, guard on
            targets.append(DRIFTGATE_WORKERS_2_GUARD)
            if args.baseline is not None:
                targets.append(
                    baseline(
                        args.baseline, GUARD_ON, "-workers-2-guard", " (--workers 2, guard)", 2
                    )
                )
    if not args.skip_litellm:
        targets.append(LITELLM)
    if args.targets:
        wanted = set(args.targets.split(","))
        targets = [t for t in targets if t.name in wanted | {"direct"}]  # added p50 needs direct
    workdir = RESULTS / "work"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    cpus = cpu_layout(args.no_pin)
    if postgres is not None and cpus[1] is not None:
        postgres.pin(cpus[1])  # beside the upstream and wrk, as Redis is
    plan = Plan(
        args.duration, args.warmup, args.rounds, cpus[0], cpus[1], tuple(args.driftgate_arg)
    )
    results = [ScenarioResult(s.name, s.title) for s in chosen]
    rss: dict[str, dict[str, float | None]] = {}
    load_before = os.getloadavg()[0]
    try:
        wrk = ensure_wrk()
        if LITELLM in targets:
            litellm_setup.ensure_litellm()
        with ProcessGroup(workdir / "logs") as group:
            upstream, upstream_port = start_upstream(
                group, sys.executable, BENCH_DIR / "fast_upstream.py", plan
            )
            if redis_port is not None:
                start_redis(group, redis_port, workdir, plan)
            running: list[Running] = []
            for target in targets:
                try:
                    r = start_target(group, target, upstream, upstream_port, workdir, plan)
                except BenchError as exc:
                    print(f"{target.label} did not start: {exc}", file=sys.stderr)
                    for result in results:
                        result.rows[target.name] = Row(target.name, error=str(exc).splitlines()[0])
                    continue
                running.append(r)
                rss[target.name] = {"idle": idle_rss(r, chosen[0]), "after": None}
            measure_all(group, wrk, running, results, plan)
            for r in running:
                rss[r.target.name]["after"] = rss_mb(r.proc.pid)
    except KeyboardInterrupt:
        print("interrupted: every process stopped", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    finally:
        if postgres is not None:
            written = postgres.close()
            print(f"PostgreSQL row: {written:,} records in driftgate_requests", flush=True)
    info = meta(args, wrk, cpus, LITELLM in targets) | {"loadavg_before": load_before}
    text = render(info, args, results, rss, {t.name: t.label for t in targets})
    print("\n" + text)
    write_json(args.json, info, results, rss)
    args.json.with_suffix(".md").write_text(text + "\n")
    print(f"\nwrote {args.json} and {args.json.with_suffix('.md')}")
    verdicts = [c.verdict for c in all_checks(results, rss)]
    return 1 if "FAIL" in verdicts else 0


def render(info: dict[str, Any], args: argparse.Namespace, results: list[ScenarioResult],
           rss: dict[str, dict[str, float | None]], labels: dict[str, str]) -> str:  # fmt: skip
    """The whole report as Markdown: a header line, one table per scenario, memory."""
    pin = info["pinning"]
    where = "unpinned" if pin["target"] is None else (
        f"targets on CPU {pin['target']}, upstream + wrk on CPU {pin['upstream_and_wrk']}")  # fmt: skip
    header = (
        f"driftgate benchmark, {info['when']}: {info['cpus']} x {info['cpu']}, {where}, "
        f"{args.duration:g} s per run, best of {args.rounds} round(s), load average before "
        f"{info['loadavg_before']:.2f}; "
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    )
    issue9 = any(r.name in ISSUE9_SCENARIOS for r in results)
    between = [issue9_block(results)] if issue9 else []
    parts = [header] + [table(r, labels) for r in results] + between + [rss_table(rss, labels)]
    return "\n\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
