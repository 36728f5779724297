"""`--workers auto`: the cores this process may use, capped by its cgroup's CPU quota."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from driftgate.proxy.config import worker_count
from driftgate.proxy.serve import cores
from driftgate.proxy.serve.cores import cgroup_cpu_limit, usable_cores


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def proc(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "proc-self-cgroup"
    path.write_text(text)
    return path


def test_a_v2_container_limit_is_read(tmp_path: Path) -> None:
    root = tree(tmp_path / "cg", {"cgroup.controllers": "cpu io", "cpu.max": "200000 100000\n"})
    assert cgroup_cpu_limit(root, proc(tmp_path, "0::/\n")) == 2.0


def test_the_least_limit_along_the_path_holds_and_a_fraction_rounds_down(tmp_path: Path) -> None:
    root = tree(
        tmp_path / "cg",
        {
            "cgroup.controllers": "cpu",
            "cpu.max": "max 100000",
            "kubepods/cpu.max": "400000 100000",
            "kubepods/pod1/ctr/cpu.max": "150000 100000",
        },
    )
    at = proc(tmp_path, "0::/kubepods/pod1/ctr\n")
    assert cgroup_cpu_limit(root, at) == 1.5
    assert usable_cores(root, at) == 1  # a second worker would be throttled


def test_no_quota_is_no_limit(tmp_path: Path) -> None:
    root = tree(tmp_path / "cg", {"cgroup.controllers": "cpu", "cpu.max": "max 100000\n"})
    assert cgroup_cpu_limit(root, proc(tmp_path, "0::/\n")) is None
    v1 = tree(
        tmp_path / "v1",
        {"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"},
    )
    assert cgroup_cpu_limit(v1, proc(tmp_path, "3:cpu,cpuacct:/\n")) is None


def test_a_v1_quota_is_read_from_the_cpu_hierarchy(tmp_path: Path) -> None:
    root = tree(
        tmp_path / "cg",
        {
            "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "300000\n",
            "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
        },
    )
    at = proc(tmp_path, "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n")
    assert cgroup_cpu_limit(root, at) == 3.0


def test_a_container_that_sees_its_cgroup_as_the_root_reads_the_roots_limit(tmp_path: Path) -> None:
    root = tree(tmp_path / "cg", {"cgroup.controllers": "cpu", "cpu.max": "100000 100000\n"})
    assert cgroup_cpu_limit(root, proc(tmp_path, "0::/docker/abc\n")) == 1.0


def test_a_hybrid_host_reads_the_unified_mount(tmp_path: Path) -> None:
    root = tree(tmp_path / "cg", {"unified/cpu.max": "200000 50000\n"})
    assert cgroup_cpu_limit(root, proc(tmp_path, "0::/\n")) == 4.0


def test_without_cgroup_files_the_affinity_decides(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(tmp_path, tmp_path / "missing") is None
    assert usable_cores(tmp_path, tmp_path / "missing") == len(os.sched_getaffinity(0))


def test_workers_auto_is_capped_by_the_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tree(tmp_path / "cg", {"cgroup.controllers": "cpu", "cpu.max": "100000 100000\n"})
    monkeypatch.setattr(cores, "CGROUP_ROOT", root)
    monkeypatch.setattr(cores, "PROC_CGROUP", proc(tmp_path, "0::/\n"))
    assert worker_count("auto") == 1
    monkeypatch.setattr(cores, "PROC_CGROUP", tmp_path / "missing")
    assert worker_count("auto") == len(os.sched_getaffinity(0))
