"""Pools are sized by the CPUs the process may use (affinity, cgroup quota), not by the machine's count."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from skysieve.cpus import cgroup_cpus, cgroup_quota, usable_cpus


@pytest.mark.parametrize("line, cpus", [("max 100000", None), ("200000 100000", 2), ("150000 100000", 2),
                                        ("50000 100000", 1), ("", None), ("garbage", None), ("x 100000", None),
                                        ("0 100000", None)])
def test_cgroup_quota_line(line, cpus):
    assert cgroup_quota(line) == cpus


def _tree(root, files: dict[str, str], self_cgroup: str):
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text + "\n")
    (root / "self").write_text(self_cgroup)
    return root / "fs", root / "self"


def test_cgroup_v2_quota_of_the_process_cgroup_or_any_above_it(tmp_path):
    fs, me = _tree(tmp_path, {"fs/cpu.max": "max 100000", "fs/kubepods/cpu.max": "300000 100000",
                              "fs/kubepods/pod1/cpu.max": "max 100000"}, "0::/kubepods/pod1\n")
    assert cgroup_cpus(fs, me) == 3  # the pod's parent limits it
    (fs / "kubepods/pod1/cpu.max").write_text("150000 100000\n")
    assert cgroup_cpus(fs, me) == 2  # the tightest counts, rounded up
    fs2, me2 = _tree(tmp_path / "ns", {"fs/cpu.max": "200000 100000"}, "0::/\n")  # a cgroup namespace: "/"
    assert cgroup_cpus(fs2, me2) == 2


def test_cgroup_v1_quota(tmp_path):
    fs, me = _tree(tmp_path, {"fs/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "250000",
                              "fs/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000",
                              "fs/cpu,cpuacct/cpu.cfs_quota_us": "-1", "fs/cpu,cpuacct/cpu.cfs_period_us": "100000"},
                   "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n")
    assert cgroup_cpus(fs, me) == 3
    fs2, me2 = _tree(tmp_path / "free", {"fs/cpu,cpuacct/cpu.cfs_quota_us": "-1",
                                         "fs/cpu,cpuacct/cpu.cfs_period_us": "100000"}, "4:cpu,cpuacct:/\n")
    assert cgroup_cpus(fs2, me2) is None  # unlimited
    assert cgroup_cpus(tmp_path / "nowhere", tmp_path / "missing") is None  # no cgroup files at all


def test_usable_cpus_follows_the_quota(monkeypatch):
    import skysieve.cpus as cpus

    monkeypatch.setattr(cpus, "cgroup_cpus", lambda: 1)
    assert usable_cpus() == 1
    monkeypatch.setattr(cpus, "cgroup_cpus", lambda: 10_000)
    assert usable_cpus() == len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else True


def test_usable_cpus_is_at_most_the_machine_and_at_least_one():
    assert 1 <= usable_cpus() <= (os.cpu_count() or 1)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_a_process_pinned_to_one_cpu_sizes_its_pools_for_one():
    """As under ``taskset -c 0`` or a container's cpuset: a fresh process pinned to one CPU sees one, and the
    detector's thread count follows (it would have taken the machine's count, up to 8)."""
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from skysieve.cpus import usable_cpus; from skysieve.detect.runtime import _threads; "
            "os.environ.pop('SKYSIEVE_THREADS', None); print(usable_cpus(), _threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1", "1"]
