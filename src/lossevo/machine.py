"""What this machine lets a run use: its CPU cores (executors and the surrogate cap workers and
threads at it; more than the cores makes oneDNN's spinning threads crawl)."""

from __future__ import annotations

import os


def cpu_cores() -> int:
    """The cores this process may run on (its affinity, as a container or ``taskset`` limits it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)
