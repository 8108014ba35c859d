"""A process's peak memory, as the kernel counts it: what "stays under the memory limit" is measured by."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak resident set in MB: VmHWM of its own address space (Linux). Not ru_maxrss where
    /proc is readable, because a spawned dask worker inherits the ru_maxrss of the process it was forked from
    and so overstates its own peak."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
