"""Instructions a request of the whole gateway (one process or `--workers N`), under valgrind.

Starts the fake upstream and the gateway (or, with `--target minimal`, the minimal passthrough
as bench/targets.py's MINIMAL launches it) under `valgrind --tool=cachegrind --cache-sim=no
--trace-children=yes` (a forked or started worker is counted too), sends exactly `--requests`
requests of a scenario over 16 keep-alive connections, then leaves the gateway idle until
`--hold` seconds after the load began, stops it and sums every process's instructions. Two
counts with different request numbers and the same hold give instructions a request with
start-up, shutdown and the idle timers taken out:

    .venv/bin/python bench/gateway_instructions.py --requests 480     # I1
    .venv/bin/python bench/gateway_instructions.py --requests 3200    # I2; (I2 - I1) / 2720
    .venv/bin/python bench/gateway_instructions.py --workers 2 --requests 480   # and so on
    .venv/bin/python bench/gateway_instructions.py --target minimal --requests 480   # the ceiling

Counts still move by a few percent from run to run: how many requests a loop turn finds
depends on timing, and a turn has a cost of its own. Compare pairs of runs, several of them.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from processes import ProcessGroup, free_port, pinned, wait_http
from runner import Plan, start_upstream
from scenarios import by_name
from targets import MINIMAL, Command, Launch, baseline, driftgate_command

BENCH_DIR = Path(__file__).resolve().parent
CONNECTIONS = 16


def send(port: int, path: str, body: bytes, headers: dict[str, str], count: int) -> None:
    """`count` requests one after the other on one keep-alive connection, each answered 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        for _ in range(count):
            conn.request("POST", path, body, headers)
            answer = conn.getresponse()
            answer.read()
            if answer.status != 200:
                raise RuntimeError(f"status {answer.status}")
    finally:
        conn.close()


def _command(target: str, source: Path | None, launch: Launch) -> Command:
    if source is not None:
        start = baseline(source.resolve()).command
    elif target == "minimal":
        start = MINIMAL.command
    else:
        return driftgate_command(launch)
    assert start is not None
    return start(launch)


def main() -> int:
    """Count one run; print its requests and the instructions of every process together."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=3200, help="rounded down to a multiple of 16"
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--hold", type=float, default=25.0, help="seconds from the load's start to the stop"
    )
    parser.add_argument(
        "--only", default="openai", help="the scenario (openai, anthropic, stream, ...)"
    )
    parser.add_argument("--baseline", type=Path, help="count another checkout instead of this one")
    parser.add_argument(
        "--cpu", type=int, default=0, help="the gateway's CPU; the load runs on the other one"
    )
    parser.add_argument(
        "--target",
        choices=("driftgate", "minimal"),
        default="driftgate",
        help="what to count: this gateway, or bench/minimal_passthrough.py (aiohttp)",
    )
    args = parser.parse_args()
    if args.target == "minimal" and (args.workers > 1 or args.baseline is not None):
        parser.error("--workers and --baseline are driftgate's: not with --target minimal")
    scenario = by_name(args.only)
    body, path, headers = scenario.body, scenario.path, dict(scenario.headers)
    if args.cpu not in (0, 1):
        parser.error("--cpu is 0 or 1 (the upstream and the load take the other)")
    plan = Plan(duration=1, warmup=0, rounds=1, target_cpu=args.cpu, load_cpu=1 - args.cpu)
    with tempfile.TemporaryDirectory(prefix="gateway-instructions-") as tmp:
        work = Path(tmp)
        with ProcessGroup(work / "logs") as group:
            _, upstream = start_upstream(
                group, sys.executable, BENCH_DIR / "fast_upstream.py", plan
            )
            port = free_port()
            launch = Launch(f"http://127.0.0.1:{upstream}", port, work)
            cmd = _command(args.target, args.baseline, launch)
            argv = [*cmd.argv, "--workers", str(args.workers)] if args.workers > 1 else cmd.argv
            valgrind = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--trace-children=yes",
                        f"--cachegrind-out-file={work}/cachegrind.%p"]  # fmt: skip
            env = cmd.env | {"PYTHONHASHSEED": "0"}  # the same dict layouts every run
            gateway = group.start(
                "gateway", pinned([*valgrind, *argv], args.cpu), env=env, cwd=work
            )
            wait_http(gateway, f"http://127.0.0.1:{port}{cmd.ready_path}", 600)
            time.sleep(5)  # the rest of start-up, under valgrind
            os.sched_setaffinity(0, {1 - args.cpu})  # the load beside the upstream, as wrk runs
            each = args.requests // CONNECTIONS
            began = time.monotonic()
            clients = [
                threading.Thread(target=send, args=(port, path, body, headers, each))
                for _ in range(CONNECTIONS)
            ]
            for client in clients:
                client.start()
            for client in clients:
                client.join()
            took = time.monotonic() - began
            if took > args.hold:
                print(f"warning: the load took {took:.1f} s, longer than --hold", file=sys.stderr)
            time.sleep(max(0.0, args.hold - took))
            group.stop(gateway, grace=120)
        total = 0
        for out in work.glob("cachegrind.*"):
            for line in out.read_text().splitlines():
                if line.startswith("summary:"):
                    total += int(line.split()[1])
        print(
            f"{each * CONNECTIONS} requests in {took:.1f} s; {total} instructions (every process)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
