"""How many CPUs this process may use, which is what thread and process pools should be sized by.

``os.cpu_count()`` is the machine's count. A process pinned by ``taskset``, a container given a cpuset, or a
cgroup CPU quota (``docker run --cpus 2``, Kubernetes limits) may use fewer; pools sized by the machine's
count then oversubscribe those CPUs and run slower than with fewer workers.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["usable_cpus", "cgroup_quota"]

_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2; v1 has cpu.cfs_quota_us / cpu.cfs_period_us


def cgroup_quota(cpu_max: str) -> int | None:
    """CPUs a cgroup v2 ``cpu.max`` line (``"QUOTA PERIOD"``, or ``"max PERIOD"`` when unlimited) allows,
    rounded up; ``None`` when unlimited or unreadable."""
    parts = cpu_max.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by its cgroup's CPU quota (at least 1)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity API (macOS, Windows)
        n = os.cpu_count() or 1
    try:
        quota = cgroup_quota(_CPU_MAX.read_text())
    except OSError:
        quota = None
    return max(1, min(n, quota) if quota else n)
