"""CPU time over a window, read from ``/proc``: the machine's busy cores and a process
tree's (a bridge and the workers it spawned).

A benchmark whose figure falls short of its bar says with these whether the process
under test or the machine ran out: ``bridge_cores`` near 1.0 is one GIL saturated,
``machine_busy_cores`` near the CPU count is a machine with nothing left to give.
Sampling reads a few small files (no CPU worth counting), so the harness may sample
while it measures.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU seconds at wall time ``at``: busy on the machine, used by a tree."""

    at: float
    machine_busy: float
    tree: float


def machine_busy_seconds() -> float:
    """CPU seconds the machine spent busy since boot (all cores; not idle, not iowait)."""
    fields = [int(v) for v in (_PROC / "stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / _TICKS


def tree_seconds(root: int) -> float:
    """CPU seconds used so far by ``root`` and its living descendants (0 once gone)."""
    total, pending = 0.0, [root]
    while pending:
        pid = pending.pop()
        try:
            stat = (_PROC / str(pid) / "stat").read_text()
            children = [
                (task / "children").read_text().split()
                for task in (_PROC / str(pid) / "task").iterdir()
            ]
        except OSError:  # exited meanwhile
            continue
        utime, stime = stat.rsplit(")", 1)[1].split()[11:13]
        total += (int(utime) + int(stime)) / _TICKS
        pending.extend(int(child) for listed in children for child in listed)
    return total


def sample(root: int) -> CpuSample:
    """The machine's and ``root``'s tree's CPU seconds now."""
    return CpuSample(time.time(), machine_busy_seconds(), tree_seconds(root))


def cores_between(samples: list[CpuSample], start: float, end: float) -> dict[str, float]:
    """Mean cores busy between the first sample at or after ``start`` and the last at or
    before ``end`` (Unix times); empty when they are under a second apart."""
    inside = [s for s in samples if start <= s.at <= end]
    if len(inside) < 2 or inside[-1].at - inside[0].at < 1.0:
        return {}
    first, last = inside[0], inside[-1]
    wall = last.at - first.at
    return {
        "bridge_cores": round((last.tree - first.tree) / wall, 2),
        "machine_busy_cores": round((last.machine_busy - first.machine_busy) / wall, 2),
        "machine_cpus": float(os.cpu_count() or 1),
        "cpu_window_s": round(wall, 1),
    }
