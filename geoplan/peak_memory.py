"""A process's memory, as the kernel counts it: what "stays under the memory limit" is measured by."""

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


def current_rss_mb() -> float:
    """This process's resident set now, in MB (VmRSS; Linux): the growth across a step is what the step holds."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status: Linux only")
