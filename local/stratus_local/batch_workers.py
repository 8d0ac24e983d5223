"""The local machine as a Batch compute environment: `STRATUS_LOCAL_BATCH_WORKERS` jobs at once, each on a
share of the cores of its own.

On AWS a Batch job's container has its vCPUs to itself. Local processes would otherwise all see every core:
two tile engines of two threads each (plus their read threads) on two cores preempt one another, and each
runs about a quarter slower than alone. So each worker slot owns `cores / workers` of them (the process's
affinity, which the engine's thread counts, GDAL and joblib follow), as a job asking for that many vCPUs would
get; with one worker, or more workers than cores, a job sees every core, as before."""

from __future__ import annotations

import logging
import os
import queue

logger = logging.getLogger("stratus_local")


def cpu_slots(workers: int, cpus: set[int] | frozenset[int]) -> list[frozenset[int] | None]:
    """One CPU set per worker slot (None: not pinned): the cores dealt round-robin when there are at least as
    many as workers, else every slot unpinned."""
    workers = max(1, workers)
    ordered = sorted(cpus)
    if workers == 1 or len(ordered) < workers:
        return [None] * workers
    return [frozenset(ordered[slot::workers]) for slot in range(workers)]


def machine_cpus() -> frozenset[int]:
    try:
        return frozenset(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return frozenset(range(os.cpu_count() or 1))


class WorkerSlots:
    """Blocking pool of worker slots: `acquire` waits for a free one (the job waits in STARTING, as for
    capacity), `pin` gives a started process its slot's cores, `release` frees the slot."""

    def __init__(self, workers: int, cpus: frozenset[int] | None = None) -> None:
        self._free: queue.Queue[frozenset[int] | None] = queue.Queue()
        for slot in cpu_slots(workers, machine_cpus() if cpus is None else cpus):
            self._free.put(slot)

    def acquire(self) -> frozenset[int] | None:
        return self._free.get()

    def release(self, slot: frozenset[int] | None) -> None:
        self._free.put(slot)

    @staticmethod
    def pin(pid: int, slot: frozenset[int] | None) -> None:
        """Restrict the process to the slot's cores. Done right after the start, before the interpreter
        makes threads (they inherit the main thread's affinity)."""
        if slot is None or not hasattr(os, "sched_setaffinity"):
            return
        try:
            os.sched_setaffinity(pid, slot)
        except OSError:  # already gone, or cores taken away from us meanwhile: it runs unpinned
            logger.debug("could not pin process %s to cores %s", pid, sorted(slot), exc_info=True)
