"""What the machine gives the engine."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """CPUs this process may run on: its affinity (a container's share, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
