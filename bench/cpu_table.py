"""CPU time a request, the kernel's included, of driftgate and the minimal passthrough, side by side.

Starts the fake upstream (CPU 1), driftgate and the minimal passthrough (both on CPU 0, as
bench/gateway.py pins them) once. Then, round after round and scenario after scenario, sends
each target in turn (which one goes first alternates) `--seconds` of wrk -t2 -c16 (on CPU 1,
as bench/gateway.py loads them) after a 1 s warm-up, while `perf stat -e task-clock` counts
every process of the target (user and system time); divided by the answers wrk counted. Prints the markdown
table of bench/cost_table.py: medians of each target's µs a request, and the median of the
per-round ratios with their lowest and highest, which say how noisy the machine was.

    .venv/bin/python bench/cpu_table.py --rounds 5                 # every scenario, ~5 min
    .venv/bin/python bench/cpu_table.py --only openai --only stream --rounds 3
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cost_table import markdown
from processes import BenchError, ProcessGroup, free_port, pinned, wait_http
from runner import Plan, start_upstream
from scenarios import SCENARIOS, Scenario, by_name, check_once
from targets import MINIMAL, Launch, driftgate_command
from workers_cost import _read_perf, gateway_pids
from wrk_runner import ensure_wrk, run_wrk

BENCH_DIR = Path(__file__).resolve().parent
CONNECTIONS = 16


def cpu_us_a_request(group: ProcessGroup, wrk: str, port: int, leader: int, scenario: Scenario,
                     seconds: float, work: Path) -> tuple[float, int]:  # fmt: skip
    """Warm up, then the target's task-clock (every process) over one wrk run: µs an answer."""
    url = f"http://127.0.0.1:{port}"
    run_wrk(group, wrk, url, scenario.lua, connections=CONNECTIONS, seconds=1, cpu=1)
    pids = [pid for _, pid in gateway_pids(leader)]
    out = work / f"perf-{leader}.csv"
    perf = subprocess.Popen(
        ["perf", "stat", "-x", ",", "-e", "task-clock", "-p", ",".join(map(str, pids)),
         "-o", str(out)], stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.3)  # perf attaches
    done = run_wrk(group, wrk, url, scenario.lua, connections=CONNECTIONS, seconds=seconds, cpu=1)
    time.sleep(0.2)  # what the target does after the answers (records a batch) counts too
    perf.send_signal(signal.SIGINT)
    perf.wait(timeout=10)
    if not done.clean:
        raise BenchError(f"{scenario.name}: {done.errors} errors, {done.bad_status} bad statuses")
    ms = _read_perf(out).get("task-clock")
    if ms is None:
        raise BenchError(f"perf counted no task-clock for {pids}")
    return ms * 1000.0 / done.requests, done.requests


def main() -> int:
    """Measure every round, then print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", action="append", help="a scenario (repeatable; default all)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="a target's wrk run a round")
    args = parser.parse_args()
    if shutil.which("perf") is None:
        print("cpu_table: needs perf (linux-perf)", file=sys.stderr)
        return 2
    wrk = ensure_wrk()
    scenarios = [by_name(n) for n in args.only] if args.only else list(SCENARIOS)
    plan = Plan(duration=1, warmup=0, rounds=args.rounds, target_cpu=0, load_cpu=1)
    costs: dict[str, dict[str, list[float]]] = {s.name: {} for s in scenarios}
    with tempfile.TemporaryDirectory(prefix="cpu-table-") as tmp:
        work = Path(tmp)
        with ProcessGroup(work / "logs") as group:
            _, upstream = start_upstream(
                group, sys.executable, BENCH_DIR / "fast_upstream.py", plan
            )
            running: dict[str, tuple[int, int]] = {}
            for name in ("driftgate", "minimal"):
                port = free_port()
                launch = Launch(f"http://127.0.0.1:{upstream}", port, work)
                command = MINIMAL.command if name == "minimal" else driftgate_command
                assert command is not None
                cmd = command(launch)
                proc = group.start(name, pinned(cmd.argv, 0), env=cmd.env, cwd=work)
                wait_http(proc, f"http://127.0.0.1:{port}{cmd.ready_path}", cmd.startup_timeout)
                for scenario in scenarios:
                    problem = check_once(port, scenario)
                    if problem:
                        raise BenchError(f"{name} {scenario.name}: {problem}")
                running[name] = (port, proc.pid)
            for round_no in range(args.rounds):
                for i, scenario in enumerate(scenarios):
                    order = list(running) if (round_no + i) % 2 == 0 else list(running)[::-1]
                    served: dict[str, int] = {}
                    for name in order:
                        port, leader = running[name]
                        us, answers = cpu_us_a_request(
                            group, wrk, port, leader, scenario, args.seconds, work
                        )
                        served[name] = answers
                        costs[scenario.name].setdefault(name, []).append(us)
                    dg, mn = (costs[scenario.name][t][-1] for t in ("driftgate", "minimal"))
                    print(f"  round {round_no + 1} {scenario.name}: driftgate {dg:.1f} µs, "
                          f"minimal {mn:.1f} µs, {mn / dg:.2f} ({served} answers)", file=sys.stderr, flush=True)  # fmt: skip
    print(markdown(costs, "CPU µs/req", lambda x: f"{x:.1f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
