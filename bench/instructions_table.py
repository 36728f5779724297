"""Instructions a request of driftgate and of the minimal passthrough in every scenario, side by side.

For each scenario and target, runs bench/gateway_instructions.py twice (`--requests` LOW and
HIGH, the same `--hold`) and takes (I(HIGH) - I(LOW)) / (HIGH - LOW): instructions a request with
start-up, shutdown and idle timers taken out. Then prints a markdown table with issue 8's and 9's
targets (bench/cost_table.py). Instruction counts hardly depend on the machine's load, so this is
the deterministic view of targets the wrk benchmark cannot decide near their bars. `--jobs 2`
runs two counts at once, each gateway on its own CPU (the other CPU holds its upstream and load).

    .venv/bin/python bench/instructions_table.py                         # every scenario, ~20 min
    .venv/bin/python bench/instructions_table.py --only openai --only stream --jobs 1
"""

from __future__ import annotations

import argparse
import itertools
import queue
import subprocess
import sys
import threading
from pathlib import Path

from cost_table import markdown
from scenarios import SCENARIOS

BENCH_DIR = Path(__file__).resolve().parent
TARGETS = ("driftgate", "minimal")


def count(scenario: str, target: str, requests: int, hold: float, cpu: int) -> tuple[int, int]:
    """One gateway_instructions.py run: (requests sent, instructions of every process)."""
    argv = [sys.executable, str(BENCH_DIR / "gateway_instructions.py"), "--only", scenario,
            "--target", target, "--requests", str(requests), "--hold", str(hold),
            "--cpu", str(cpu)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
    for line in done.stdout.splitlines():
        if "instructions (every process)" in line:
            sent = int(line.split()[0])
            total = int(line.split("; ")[1].split()[0])
            if "warning" in done.stderr:
                print(f"  {scenario} {target}: {done.stderr.strip()}", file=sys.stderr)
            return sent, total
    raise RuntimeError(f"{scenario} {target}: no count\n{done.stdout}\n{done.stderr[-2000:]}")


def main() -> int:
    """Count every (scenario, target, request number), then print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", action="append", help="a scenario (repeatable; default all)")
    parser.add_argument("--low", type=int, default=160, help="requests of the first count")
    parser.add_argument("--high", type=int, default=960, help="requests of the second count")
    parser.add_argument(
        "--hold", type=float, default=14.0, help="seconds from the load's start to the stop"
    )
    parser.add_argument("--jobs", type=int, choices=(1, 2), default=2)
    parser.add_argument(
        "--repeat", type=int, default=1, help="pairs of counts per scenario and target"
    )
    args = parser.parse_args()
    names = args.only or [s.name for s in SCENARIOS]
    work: queue.Queue[tuple[str, str, int, int]] = queue.Queue()
    for name, target, rep, n in itertools.product(
        names, TARGETS, range(args.repeat), (args.low, args.high)
    ):
        work.put((name, target, rep, n))
    counts: dict[tuple[str, str, int, int], tuple[int, int]] = {}
    failures: list[str] = []

    def worker(cpu: int) -> None:
        while True:
            try:
                name, target, rep, n = work.get_nowait()
            except queue.Empty:
                return
            try:
                counts[(name, target, rep, n)] = count(name, target, n, args.hold, cpu)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                failures.append(str(exc))
            print(f"  {name} {target} #{rep + 1} {n}: {counts.get((name, target, rep, n))}",
                  file=sys.stderr, flush=True)  # fmt: skip

    threads = [threading.Thread(target=worker, args=(cpu,)) for cpu in range(args.jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    costs: dict[str, dict[str, list[float]]] = {}
    for name, target, rep in itertools.product(names, TARGETS, range(args.repeat)):
        low, high = (
            counts.get((name, target, rep, args.low)),
            counts.get((name, target, rep, args.high)),
        )
        if low and high and high[0] > low[0]:
            per = (high[1] - low[1]) / (high[0] - low[0])
            costs.setdefault(name, {}).setdefault(target, []).append(per)
    print(markdown(costs, "instr/req", lambda x: f"{x / 1000:.1f}k"))
    for failure in failures:
        print(f"failed: {failure}", file=sys.stderr)
    return 2 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
