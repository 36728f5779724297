"""What each gateway process spends per request: one process against `--workers N`, by perf counters.

Runs the gateway as bench/gateway.py does (on CPU 0; the fake upstream and wrk on CPU 1) and,
while `wrk -t2 -c16` drives one scenario, counts with `perf stat -p` on every gateway process
(the supervisor and each worker) its CPU time (task-clock), context switches, page faults and
system calls. Prints them per request, summed over the processes and for each one, round by
round with the median. With `--baseline DIR` another checkout runs beside this one, same rounds.

Hardware counters (instructions, cycles) need a PMU, which a virtual machine often lacks; count
instructions with valgrind instead (bench/record_cost.py and the other *_cost.py say how).

    .venv/bin/python bench/workers_cost.py --only openai --only stream --rounds 3
    .venv/bin/python bench/workers_cost.py --baseline /tmp/base --workers 2
    .venv/bin/python bench/workers_cost.py --pair --rounds 5   # and two separate processes
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from processes import BenchError, ProcessGroup, _children, free_port, pinned, rss_mb, wait_http
from runner import Plan, start_upstream
from scenarios import by_name, check_once
from targets import Launch, baseline, driftgate_command
from wrk_runner import WrkResult, ensure_wrk, run_wrk

BENCH_DIR = Path(__file__).resolve().parent
EVENTS = ("task-clock", "context-switches", "page-faults", "raw_syscalls:sys_enter")
SCALE = {"task-clock": 1000.0}  # perf counts task-clock in ms: shown in µs a request


@dataclass(frozen=True)
class Run:
    """One 16-connection run: requests served and each gateway process's counters."""

    requests: int
    counts: list[tuple[str, dict[str, float]]]  # (role, event -> count)

    def per_request(self, event: str, role: str | None = None) -> float:
        """`event` a request, over every process or for one role."""
        total = sum(c.get(event, 0.0) for r, c in self.counts if role in (None, r))
        return SCALE.get(event, 1.0) * total / self.requests


def gateway_pids(leader: int) -> list[tuple[str, int]]:
    """The gateway's processes: the one process, or the supervisor and its workers."""
    kids = sorted(_children(leader))
    if not kids:
        return [("process", leader)]
    return [("supervisor", leader)] + [(f"worker {i}", pid) for i, pid in enumerate(kids)]


def _read_perf(path: Path) -> dict[str, float]:
    counts: dict[str, float] = {}
    for line in path.read_text().splitlines():
        fields = line.split(",")
        if line.startswith("#") or len(fields) < 3:
            continue
        try:
            counts[fields[2]] = float(fields[0])
        except ValueError:  # "<not supported>": the event is missing here
            continue
    return counts


def count_run(group: ProcessGroup, wrk: str, gateways: list[tuple[int, int]], scenario: str,
              seconds: float, work: Path) -> Run:  # fmt: skip
    """Warm up for a second, then count every gateway process over one 16-connection run.

    Several gateways (the `--pair` control) split the 16 connections between them, each driven
    by a wrk of its own at the same time; their requests and counters are summed.
    """
    chosen = by_name(scenario)
    for port, _ in gateways:
        problem = check_once(port, chosen)
        if problem:
            raise BenchError(problem)
    connections = 16 // len(gateways)

    def drive(port: int, secs: float, tag: str) -> WrkResult:
        url = f"http://127.0.0.1:{port}"
        return run_wrk(group, wrk, url, chosen.lua, connections=connections, seconds=secs, cpu=1,
                       tag=tag)  # fmt: skip

    def drive_all(secs: float) -> list[WrkResult]:
        with ThreadPoolExecutor(len(gateways)) as pool:
            runs = [
                pool.submit(drive, port, secs, f"-g{i}") for i, (port, _) in enumerate(gateways)
            ]
            return [run.result() for run in runs]

    drive_all(1)
    pids = [
        (role if len(gateways) == 1 else f"{role} {i}", pid)
        for i, (_, leader) in enumerate(gateways)
        for role, pid in gateway_pids(leader)
    ]
    perfs = []
    for _, pid in pids:
        argv = ["perf", "stat", "-x", ",", "-e", ",".join(EVENTS), "-p", str(pid),
                "-o", str(work / f"perf-{pid}.csv")]  # fmt: skip
        perfs.append(subprocess.Popen(argv, stderr=subprocess.DEVNULL))
    time.sleep(0.2)  # perf attaches
    loads = drive_all(seconds)
    for perf in perfs:
        perf.send_signal(signal.SIGINT)
    for perf in perfs:
        perf.wait(timeout=10)
    for load in loads:
        if not load.clean:
            raise BenchError(f"{scenario}: {load.errors} errors, {load.bad_status} bad statuses")
    requests = sum(load.requests for load in loads)
    return Run(requests, [(r, _read_perf(work / f"perf-{p}.csv")) for r, p in pids])


def start_gateway(group: ProcessGroup, name: str, workers: int, upstream_port: int, work: Path,
                  source: Path | None, variant: str = "") -> tuple[int, int]:  # fmt: skip
    """This build (or the checkout `source`) as one process or `--workers N`, on CPU 0.

    `variant` keeps its config and home apart from another gateway's of the same build.
    """
    port = free_port()
    launch = Launch(f"http://127.0.0.1:{upstream_port}", port, work)
    if source is None:
        cmd = driftgate_command(launch, "fast", "", variant or f"-w{workers}")
    else:
        start = baseline(source, "", variant or f"-w{workers}").command
        assert start is not None
        cmd = start(launch)
    argv = [*cmd.argv, "--workers", str(workers)] if workers > 1 else cmd.argv
    proc = group.start(name, pinned(argv, 0), env=cmd.env, cwd=work)
    wait_http(proc, f"http://127.0.0.1:{port}/health", 90)
    return port, proc.pid


def _report(scenario: str, label: str, runs: list[Run]) -> None:
    print(f"{scenario} {label}: median of {len(runs)} rounds (the rounds)")
    roles = [role for role, _ in runs[0].counts]
    for event in EVENTS:
        each = [run.per_request(event) for run in runs]
        rounds = ", ".join(f"{x:.2f}" for x in each)
        print(f"    {event:24} {statistics.median(each):9.2f} a request  ({rounds})")
        if len(roles) > 1:
            parts = "  ".join(
                f"{role} {statistics.median(run.per_request(event, role) for run in runs):.2f}"
                for role in roles
            )
            print(f"    {'':24} {parts}")


def main() -> int:
    """Count, then print the table per scenario and gateway."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only", action="append", help="a scenario (repeatable; default openai, stream)"
    )
    parser.add_argument(
        "--workers", action="append", type=int, help="process counts (default 1 and 2)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of each counted run")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout, measured in the same rounds"
    )
    parser.add_argument(
        "--pair",
        action="store_true",
        help="add a control: two separate one-process gateways on CPU 0, each driven with 8 of "
        "the 16 connections by a wrk of its own (what two interpreters sharing one core cost, "
        "without the supervisor, SO_REUSEPORT or anything else of --workers)",
    )
    args = parser.parse_args()
    if shutil.which("perf") is None:
        print("workers_cost: needs perf (linux-perf)", file=sys.stderr)
        return 2
    scenarios = args.only or ["openai", "stream"]
    wrk = ensure_wrk()
    builds: list[tuple[str, Path | None]] = [("this", None)]
    if args.baseline is not None:
        builds.append(("baseline", args.baseline.resolve()))
    plan = Plan(duration=args.duration, warmup=1, rounds=args.rounds, target_cpu=0, load_cpu=1)
    runs: dict[tuple[str, str], list[Run]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="workers-cost-") as tmp,
        ProcessGroup(Path(tmp) / "logs") as group,
    ):
        work = Path(tmp)
        _, upstream = start_upstream(group, sys.executable, BENCH_DIR / "fast_upstream.py", plan)
        gateways: dict[str, list[tuple[int, int]]] = {}
        for build, source in builds:
            for n in args.workers or [1, 2]:
                label = f"{build}, --workers {n}"
                port, leader = start_gateway(group, f"{build}-w{n}", n, upstream, work, source)
                check_once(port, by_name(scenarios[0]))
                time.sleep(0.5)
                rss = rss_mb(leader) or 0.0
                print(f"{label}: idle RSS {rss:.1f} MB, {len(gateway_pids(leader))} process(es)")
                gateways[label] = [(port, leader)]
            if args.pair:
                label = f"{build}, two separate processes"
                gateways[label] = [
                    start_gateway(group, f"{build}-pair{i}", 1, upstream, work, source, f"-pair{i}")
                    for i in range(2)
                ]
                for port, _ in gateways[label]:
                    check_once(port, by_name(scenarios[0]))
                time.sleep(0.5)
                rss = sum(rss_mb(leader) or 0.0 for _, leader in gateways[label])
                print(f"{label}: idle RSS {rss:.1f} MB, 2 processes")
        for scenario in scenarios:
            for round_no in range(args.rounds):
                for label, pairs in gateways.items():
                    run = count_run(group, wrk, pairs, scenario, args.duration, work)
                    runs.setdefault((scenario, label), []).append(run)
                    cpu = run.per_request("task-clock")
                    calls = run.per_request("raw_syscalls:sys_enter")
                    print(f"  {scenario} round {round_no + 1} {label}: {run.requests} requests, "
                          f"{cpu:.1f} µs CPU, {calls:.2f} system calls a request", flush=True)  # fmt: skip
    print()
    for (scenario, label), each in runs.items():
        _report(scenario, label, each)
    _ratios(runs)
    return 0


def _ratios(runs: dict[tuple[str, str], list[Run]]) -> None:
    """Each gateway's CPU a request against its build's one process, round by round."""
    for (scenario, label), each in runs.items():
        build = label.split(",")[0]
        one = runs.get((scenario, f"{build}, --workers 1"))
        if one is None or one is each:
            continue
        paired = [
            run.per_request("task-clock") / base.per_request("task-clock")
            for run, base in zip(each, one, strict=False)
        ]
        shown = ", ".join(f"{x:.2f}" for x in paired)
        print(f"{scenario} {label} CPU a request / one process's: median "
              f"{statistics.median(paired):.2f} ({shown})")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
