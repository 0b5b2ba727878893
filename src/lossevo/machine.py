"""What this machine lets a run use: its CPU cores (executors and the surrogate cap workers and
threads at it; more than the cores makes oneDNN's spinning threads crawl) and its memory (no
data file may declare more)."""

from __future__ import annotations

import os


def cpu_cores() -> int:
    """The cores this process may run on (its affinity, as a container or ``taskset`` limits it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def memory_bytes() -> int:
    """This machine's physical memory, which no array a data file declares may exceed."""
    return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
