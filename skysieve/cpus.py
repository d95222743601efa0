"""How many CPUs this process may use, which is what thread and process pools should be sized by.

``os.cpu_count()`` is the machine's count. A process pinned by ``taskset``, a container given a cpuset, or a
cgroup CPU quota (``docker run --cpus 2``, a Kubernetes CPU limit, systemd's ``CPUQuota``) may use fewer;
pools sized by the machine's count then oversubscribe those CPUs and run slower than with fewer workers.
The quota is read from the process's own cgroup and every cgroup above it (cgroup v2 ``cpu.max``, v1
``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), the tightest one counting.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["usable_cpus", "cgroup_quota", "cgroup_cpus"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
SELF_CGROUP = Path("/proc/self/cgroup")


def cgroup_quota(cpu_max: str) -> int | None:
    """CPUs a cgroup v2 ``cpu.max`` line (``"QUOTA PERIOD"``, or ``"max PERIOD"`` when unlimited) allows,
    rounded up; ``None`` when unlimited or unreadable. A v1 pair reads the same (``"QUOTA PERIOD"``, quota
    -1 when unlimited)."""
    parts = cpu_max.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _up(root: Path, cgroup_path: str) -> list[Path]:
    """The cgroup's folder under ``root`` and every folder above it, up to ``root``."""
    here = root / cgroup_path.strip("/")
    return [here, *[p for p in here.parents if p == root or root in p.parents]]


def cgroup_cpus(root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> int | None:
    """CPUs the tightest CPU quota over this process's cgroups allows (v1 and v2), or ``None`` if none."""
    listing = _read(self_cgroup)
    if not listing:
        return None
    limits: list[int] = []
    for line in listing.splitlines():
        hierarchy, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if hierarchy == "0" and controllers == "":  # cgroup v2 (unified)
            texts = [_read(d / "cpu.max") for d in (*_up(root, path), *_up(root / "unified", path))]
        elif "cpu" in controllers.split(","):  # cgroup v1, mounted as e.g. cpu,cpuacct
            texts = [f"{_read(d / 'cpu.cfs_quota_us')} {_read(d / 'cpu.cfs_period_us')}"
                     for d in _up(root / controllers, path)]
        else:
            continue
        limits += [n for n in (cgroup_quota(t) for t in texts if t) if n]
    return min(limits) if limits else None


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by its cgroups' CPU quota (at least 1)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity API (macOS, Windows)
        n = os.cpu_count() or 1
    quota = cgroup_cpus()
    return max(1, min(n, quota) if quota else n)
