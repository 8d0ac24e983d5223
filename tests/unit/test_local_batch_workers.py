"""The local Batch seam's worker slots: jobs at once, and each job's share of the cores."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from stratus_local.batch_workers import BATCH_NICENESS, WorkerSlots, cpu_slots


def test_each_worker_owns_its_share_of_the_cores():
    assert cpu_slots(2, {0, 1}) == [frozenset({0}), frozenset({1})]
    assert cpu_slots(2, {0, 1, 2, 3, 4}) == [frozenset({0, 2, 4}), frozenset({1, 3})]
    assert cpu_slots(3, {4, 5, 6}) == [frozenset({4}), frozenset({5}), frozenset({6})]


def test_one_worker_or_more_workers_than_cores_are_not_pinned():
    assert cpu_slots(1, {0, 1}) == [None]
    assert cpu_slots(4, {0, 1}) == [None] * 4
    assert cpu_slots(0, {0, 1}) == [None]


def test_a_job_waits_for_a_free_slot():
    slots = WorkerSlots(2, frozenset({0, 1}))
    first, second = slots.acquire(), slots.acquire()
    assert {first, second} == {frozenset({0}), frozenset({1})}
    got: list[frozenset[int] | None] = []
    waiter = threading.Thread(target=lambda: got.append(slots.acquire()))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and not got  # both slots taken: the third job waits
    slots.release(second)
    waiter.join(5)
    assert got == [second]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs Linux and at least 2 cores")
def test_a_started_process_and_its_threads_run_on_the_slots_cores():
    core = min(os.sched_getaffinity(0))
    slots = WorkerSlots(2, frozenset(os.sched_getaffinity(0)))
    slot = slots.acquire()
    assert slot is not None and core in slot
    # The child reports its threads' affinity once started (a thread made after the pin inherits it)
    script = ("import os, threading, sys; sys.stdin.readline(); seen = []; "
              "t = threading.Thread(target=lambda: seen.append(sorted(os.sched_getaffinity(0)))); t.start(); t.join(); "
              "print(sorted(os.sched_getaffinity(0)), seen[0])")
    process = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    slots.pin(process.pid, slot)
    out, _ = process.communicate("go\n", timeout=30)
    assert out.strip() == f"{sorted(slot)} {sorted(slot)}"


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="needs POSIX scheduling priorities")
def test_a_started_process_and_its_threads_yield_to_the_local_system():
    script = ("import os, threading, sys; sys.stdin.readline(); seen = []; "
              "t = threading.Thread(target=lambda: seen.append(os.nice(0))); t.start(); t.join(); "
              "print(os.nice(0), seen[0])")
    process = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    WorkerSlots.yield_to_local_system(process.pid)
    out, _ = process.communicate("go\n", timeout=30)
    ours = os.nice(0)
    expected = min(19, ours + BATCH_NICENESS)
    assert out.strip() == f"{expected} {expected}" and expected > ours  # the local system stays ahead of it
