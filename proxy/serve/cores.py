"""How many cores this process may use: its CPU affinity, and the CPU quota of its cgroup.

`--workers auto` starts one worker per usable core. In a container with a CPU limit
(`docker run --cpus 2`, a Kubernetes `limits.cpu`) the host may have 64 cores in the affinity
mask while the cgroup lets the processes run 2 CPUs' worth: 64 workers would then share 2 CPUs
and be throttled together. The quota is read from cgroup v2 (`cpu.max`) or v1
(`cpu.cfs_quota_us` / `cpu.cfs_period_us`) for the process's cgroup and each one above it (a
parent's limit holds for its children), and rounded down (at least one): a worker more than the
quota runs is throttled, which stalls every request it holds; a fraction of a core left unused
costs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def usable_cores(root: Path | None = None, proc_cgroup: Path | None = None) -> int:
    """The cores this process may use: the affinity mask, capped by the cgroup CPU quota."""
    return usable_cores_and_quota(root, proc_cgroup)[0]


def usable_cores_and_quota(
    root: Path | None = None, proc_cgroup: Path | None = None
) -> tuple[int, float | None]:
    """`usable_cores`, and the cgroup quota that capped it (None: no quota)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    quota = cgroup_cpu_limit(root, proc_cgroup)
    if quota is not None:
        cores = min(cores, max(1, int(quota)))
    return cores, quota


def cgroup_cpu_limit(root: Path | None = None, proc_cgroup: Path | None = None) -> float | None:
    """CPUs' worth of time the process's cgroups allow (the least along its path), or None: no
    quota, or no cgroup file to read (not Linux, /sys not mounted)."""
    root = CGROUP_ROOT if root is None else root
    proc_cgroup = PROC_CGROUP if proc_cgroup is None else proc_cgroup
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits: list[float] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # cgroup v2 (unified): root/PATH/cpu.max
            base = root if (root / "cgroup.controllers").exists() else root / "unified"
            limits += _along(base, path, _v2_limit)
        elif "cpu" in controllers.split(","):  # cgroup v1: the cpu controller's hierarchy
            for name in (controllers, "cpu", "cpu,cpuacct"):
                if (root / name).is_dir():
                    limits += _along(root / name, path, _v1_limit)
                    break
    return min(limits) if limits else None


def _along(base: Path, path: str, read: Callable[[Path], float | None]) -> list[float]:
    """The limits `read` finds in the cgroup at `path` under `base` and each directory above it.

    In a container the process's path may not exist under the container's own mount (it sees
    its cgroup as the root): the root's limit is then the one that holds."""
    found: list[float] = []
    here = base / path.strip("/")
    while True:
        if here.is_dir():
            limit = read(here)
            if limit is not None:
                found.append(limit)
        if here == base or base not in here.parents:
            break
        here = here.parent
    return found


def _v2_limit(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return _ratio(quota, period)


def _v1_limit(folder: Path) -> float | None:
    try:
        quota = (folder / "cpu.cfs_quota_us").read_text().strip()
        period = (folder / "cpu.cfs_period_us").read_text().strip()
    except OSError:
        return None
    return _ratio(quota, period)


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None  # -1 (v1): no quota
