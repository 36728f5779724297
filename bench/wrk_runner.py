"""Drive load with wrk (Debian's package, installed when missing) and read its summary line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from processes import BenchError, ProcessGroup, pinned


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: throughput, latency percentiles and error counts."""

    connections: int
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int  # connect + read + write + timeout
    bad_status: int  # responses that were not 2xx/3xx

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def clean(self) -> bool:
        """True when every request got a good answer."""
        return self.errors == 0 and self.bad_status == 0 and self.requests > 0


def ensure_wrk() -> str:
    """The path of wrk, installing Debian's package first when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise BenchError("wrk is not installed and we are not root: run `apt-get install -y wrk`")
    print("wrk not found: apt-get update && apt-get install -y wrk", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "wrk"]):
        done = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        if done.returncode != 0:
            raise BenchError(f"`{' '.join(cmd)}` failed:\n{done.stderr[-2000:]}")
    found = shutil.which("wrk")
    if not found:
        raise BenchError("apt-get installed wrk but it is not on PATH")
    return found


def parse_summary(output: str, connections: int) -> WrkResult:
    """The WrkResult from wrk's output (the WRKJSON line our report.lua prints)."""
    for line in output.splitlines():
        if line.startswith("WRKJSON "):
            raw = json.loads(line[len("WRKJSON ") :])
            return WrkResult(
                connections=connections,
                requests=int(raw["requests"]),
                seconds=raw["duration_us"] / 1e6,
                p50_ms=raw["p50_us"] / 1000,
                p90_ms=raw["p90_us"] / 1000,
                p99_ms=raw["p99_us"] / 1000,
                errors=int(
                    raw["err_connect"] + raw["err_read"] + raw["err_write"] + raw["err_timeout"]
                ),
                bad_status=int(raw["err_status"]),
            )
    raise BenchError(f"wrk printed no summary line:\n{output[-2000:]}")


def run_wrk(
    group: ProcessGroup,
    wrk: str,
    url: str,
    script: Path,
    *,
    connections: int,
    seconds: float,
    cpu: int | None,
    tag: str = "",
) -> WrkResult:
    """Run wrk against `url` with `script` and return its summary (bounded by a hard timeout).

    `tag` keeps the log of one wrk apart from another's running at the same time.
    """
    threads = 1 if connections == 1 else 2
    argv = pinned(
        [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        cpu,
    )
    proc = group.start(f"wrk-{script.stem}-c{connections}{tag}", argv)
    try:
        proc.popen.wait(timeout=seconds + 30)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {seconds + 30:.0f}s") from exc
    finally:
        group.stop(proc)
    output = proc.log.read_text(errors="replace")
    if proc.popen.returncode != 0:
        raise BenchError(f"wrk exited with status {proc.popen.returncode}:\n{output[-2000:]}")
    return parse_summary(output, connections)
