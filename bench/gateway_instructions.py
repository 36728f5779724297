"""Instructions a request of the whole gateway (one process or `--workers N`), under valgrind.

Starts the fake upstream and the gateway under `valgrind --tool=cachegrind --cache-sim=no
--trace-children=yes` (a forked or started worker is counted too), sends exactly `--requests`
requests of a scenario over 16 keep-alive connections, then leaves the gateway idle until
`--hold` seconds after the load began, stops it and sums every process's instructions. Two
counts with different request numbers and the same hold give instructions a request with
start-up, shutdown and the idle timers taken out:

    .venv/bin/python bench/gateway_instructions.py --requests 480     # I1
    .venv/bin/python bench/gateway_instructions.py --requests 3200    # I2; (I2 - I1) / 2720
    .venv/bin/python bench/gateway_instructions.py --workers 2 --requests 480   # and so on

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
from targets import Launch, baseline, driftgate_command

BENCH_DIR = Path(__file__).resolve().parent
CONNECTIONS = 16


def _send(port: int, path: str, body: bytes, headers: dict[str, str], count: int) -> None:
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
    args = parser.parse_args()
    scenario = by_name(args.only)
    body, path, headers = scenario.body, scenario.path, dict(scenario.headers)
    plan = Plan(duration=1, warmup=0, rounds=1, target_cpu=0, load_cpu=1)
    with tempfile.TemporaryDirectory(prefix="gateway-instructions-") as tmp:
        work = Path(tmp)
        with ProcessGroup(work / "logs") as group:
            _, upstream = start_upstream(
                group, sys.executable, BENCH_DIR / "fast_upstream.py", plan
            )
            port = free_port()
            launch = Launch(f"http://127.0.0.1:{upstream}", port, work)
            if args.baseline is None:
                cmd = driftgate_command(launch)
            else:
                start = baseline(args.baseline.resolve()).command
                assert start is not None
                cmd = start(launch)
            argv = [*cmd.argv, "--workers", str(args.workers)] if args.workers > 1 else cmd.argv
            valgrind = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--trace-children=yes",
                        f"--cachegrind-out-file={work}/cachegrind.%p"]  # fmt: skip
            gateway = group.start("gateway", pinned([*valgrind, *argv], 0), env=cmd.env, cwd=work)
            wait_http(gateway, f"http://127.0.0.1:{port}/health", 600)
            time.sleep(5)  # the rest of start-up, under valgrind
            os.sched_setaffinity(0, {1})  # the load beside the upstream, as wrk runs
            each = args.requests // CONNECTIONS
            began = time.monotonic()
            clients = [
                threading.Thread(target=_send, args=(port, path, body, headers, each))
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
