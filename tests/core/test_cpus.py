"""Pools are sized by the CPUs the process may use (affinity, cgroup quota), not by the machine's count."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from skysieve.cpus import cgroup_quota, usable_cpus


@pytest.mark.parametrize("line, cpus", [("max 100000", None), ("200000 100000", 2), ("150000 100000", 2),
                                        ("50000 100000", 1), ("", None), ("garbage", None), ("x 100000", None),
                                        ("0 100000", None)])
def test_cgroup_quota_line(line, cpus):
    assert cgroup_quota(line) == cpus


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
