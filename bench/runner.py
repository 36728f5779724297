"""Start every target next to the fake upstream, then measure them in interleaved rounds."""

from __future__ import annotations

import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from processes import (
    BenchError,
    ProcessGroup,
    Started,
    cpu_seconds,
    free_port,
    pinned,
    rss_mb,
    wait_http,
)
from report import Row, ScenarioResult, best_of
from scenarios import Scenario, by_name, check_once
from targets import Launch, Target
from wrk_runner import run_wrk


@dataclass(frozen=True)
class Plan:
    """How long and how often to measure, and where processes run."""

    duration: float
    warmup: float
    rounds: int
    target_cpu: int | None
    load_cpu: int | None
    driftgate_args: tuple[str, ...] = ()


def target_cpus(target: Target, plan: Plan) -> int | str | None:
    """Where a row runs: the target CPU, or with `spread` that and the upstream and wrk's CPU."""
    if not target.spread or plan.target_cpu is None or plan.load_cpu is None:
        return plan.target_cpu
    return f"{plan.target_cpu},{plan.load_cpu}"


@dataclass(frozen=True)
class Running:
    """A target that is up: the port wrk hits and the process whose RSS we read."""

    target: Target
    port: int
    proc: Started


def start_upstream(
    group: ProcessGroup, python: str, script: Path, plan: Plan
) -> tuple[Started, int]:
    """The fast fake upstream on its own CPU; returns it and its port."""
    port = free_port()
    proc = group.start(
        "upstream", pinned([python, str(script), "--port", str(port)], plan.load_cpu)
    )
    wait_http(proc, f"http://127.0.0.1:{port}/", 20)
    return proc, port


def start_redis(group: ProcessGroup, port: int, workdir: Path, plan: Plan) -> Started:
    """Debian's redis-server for the `--redis-guard` row, beside the upstream (no persistence)."""
    if shutil.which("redis-server") is None:
        raise BenchError("--redis-guard needs redis-server: apt-get install -y redis-server")
    folder = workdir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(folder)]  # fmt: skip
    proc = group.start("redis", pinned(argv, plan.load_cpu))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise BenchError(f"redis-server exited:\n{proc.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return proc
        except OSError:
            time.sleep(0.05)
    raise BenchError("redis-server did not answer PING within 20 s")


def start_target(group: ProcessGroup, target: Target, upstream: Started, upstream_port: int,
                 workdir: Path, plan: Plan) -> Running:  # fmt: skip
    """Start one target in its own process and wait until it answers HTTP."""
    if target.command is None:
        return Running(target, upstream_port, upstream)
    port = free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    cmd = target.command(Launch(upstream_url, port, workdir, plan.driftgate_args))
    argv = pinned(cmd.argv, target_cpus(target, plan))
    proc = group.start(target.name, argv, env=cmd.env, cwd=workdir)
    wait_http(proc, f"http://127.0.0.1:{port}{cmd.ready_path}", cmd.startup_timeout)
    return Running(target, port, proc)


def idle_rss(running: Running, first: Scenario) -> float | None:
    """RSS after start-up and one request (the first scenario's), before any load."""
    if check_once(running.port, first) is not None:
        return None
    time.sleep(0.3)
    return rss_mb(running.proc.pid)


def measure(group: ProcessGroup, wrk: str, running: Running, scenario: Scenario, plan: Plan) -> Row:
    """Check one answer, warm up, then the c16 throughput run and the c1 latency run."""
    name = running.target.name
    problem = check_once(running.port, scenario)
    if problem:
        return Row(name, error=problem)
    url = f"http://127.0.0.1:{running.port}"
    lua, cpu = scenario.lua, plan.load_cpu
    try:
        if plan.warmup > 0:
            run_wrk(group, wrk, url, lua, connections=16, seconds=plan.warmup, cpu=cpu)
        cpu_before = cpu_seconds(running.proc.pid)
        load = run_wrk(group, wrk, url, lua, connections=16, seconds=plan.duration, cpu=cpu)
        cpu_after = cpu_seconds(running.proc.pid)
        latency = run_wrk(group, wrk, url, lua, connections=1, seconds=plan.duration, cpu=cpu)
    except BenchError as exc:
        return Row(name, error=str(exc).splitlines()[0])
    cpu_us = None
    if cpu_before is not None and cpu_after is not None and load.requests:
        cpu_us = (cpu_after - cpu_before) / load.requests * 1e6
    return Row(name, load=load, latency=latency, cpu_us=cpu_us)


def measure_all(group: ProcessGroup, wrk: str, running: list[Running], results: list[ScenarioResult],
                plan: Plan) -> None:  # fmt: skip
    """Per scenario, `plan.rounds` rounds over every target in turn; each row keeps its best run.

    Interleaving spreads a burst of outside load over every row instead of one, and the best
    of the rounds is the figure least disturbed by it.
    """
    for result in results:
        scenario = by_name(result.name)
        runs: dict[str, list[Row]] = {r.target.name: [] for r in running}
        for round_no in range(plan.rounds):
            for r in running:
                row = measure(group, wrk, r, scenario, plan)
                runs[r.target.name].append(row)
                shown = (
                    row.error
                    or f"{row.rps or 0:9,.0f} req/s @16   p50 {row.p50_ms or 0:7.3f} ms @1"
                )
                print(
                    f"  {result.name:13} round {round_no + 1}  {r.target.label:16} {shown}",
                    flush=True,
                )
        for name, rows in runs.items():
            result.rows[name] = best_of(rows)
            result.cpu_rounds[name] = [
                r.cpu_us if r.load is not None and r.load.clean else None for r in rows
            ]
