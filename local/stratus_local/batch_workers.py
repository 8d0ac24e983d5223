"""The local machine as a Batch compute environment: `STRATUS_LOCAL_BATCH_WORKERS` jobs at once, each on a
share of the cores of its own.

On AWS a Batch job's container has its vCPUs to itself. Local processes would otherwise all see every core:
two tile engines of two threads each (plus their read threads) on two cores preempt one another, and each
runs about a quarter slower than alone. So each worker slot owns `cores / workers` of them (the process's
affinity, which the engine's thread counts, GDAL and joblib follow), as a job asking for that many vCPUs would
get; with one worker, or more workers than cores, a job sees every core, as before.

Batch processes also run at a lower priority than the local system (`BATCH_NICENESS`): on AWS, S3, SQS, DynamoDB
and Step Functions never take CPU from a job's vCPUs, but locally their emulator shares the cores with the jobs.
At equal priority a tile's S3 read waited for a time slice behind the other tile's compute, and the tile sat idle
meanwhile (a 16-tile job at 2 workers kept 1.77 of the 2 cores busy, 4.7 s per tile process against 4.1 s at one
worker); with the emulator answering first, as S3 would, both cores stay busy (1.93) and the same job takes 35 s
instead of 40-43 s. The emulator's CPU is spent all the same: only who waits changes."""

from __future__ import annotations

import logging
import os
import queue

logger = logging.getLogger("stratus_local")

# Scheduling niceness of Batch processes above the local system's, so that its requests are served first.
BATCH_NICENESS = 5


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
    capacity), `pin` gives a started process its slot's cores, `yield_to_local_system` its priority,
    `release` frees the slot."""

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

    @staticmethod
    def yield_to_local_system(pid: int) -> None:
        """Run the process `BATCH_NICENESS` below the local system's priority (raising a niceness needs no
        privilege); like `pin`, right after the start, so its threads inherit it."""
        try:
            os.setpriority(os.PRIO_PROCESS, pid, min(19, os.getpriority(os.PRIO_PROCESS, 0) + BATCH_NICENESS))
        except (OSError, AttributeError):  # already gone, or not a POSIX system: it runs at normal priority
            logger.debug("could not lower the priority of process %s", pid, exc_info=True)
