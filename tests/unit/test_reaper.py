"""The reaper's rounds over the real jobs table (its sparse active-jobs index); the workflow it asks about runs
is a stand-in for Step Functions and Batch (their emulation: `tests/api/test_reaper_api.py`)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stratus.domain.jobs import Job
from stratus.domain.lifecycle import ENDED
from stratus.domain.reaper import NEVER_STARTED_REASON, Reaper, ReaperPolicy, RunState
from stratus.events import JobStatus, utcnow
from stratus.settings import Settings
from stratus.store import jobs as jobs_store
from stratus.store.jobs import DynamoJobRepository

GRAPH = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
POLICY = ReaperPolicy(quiet_after_s=900, never_started_after_s=600, runnable_limit_s=3600, reserve_s=10)
LATER = timedelta(hours=2)


class Workflow:
    """Runs by (job, run): alive ones have an execution, lost ones none."""

    def __init__(self):
        self.alive: set[tuple[str, str]] = set()
        self.asked: list[str] = []

    def state(self, job_id, run_id):
        self.asked.append(job_id)
        return RunState(execution="RUNNING" if (job_id, run_id) in self.alive else None)

    def stop(self, job_id, run_id):
        pass


class Queue:
    def __init__(self):
        self.events = []

    def status(self, event):
        self.events.append(event)


def queued_job(repository, job_id: str, started_at) -> str:
    repository.add(Job(job_id=job_id, user_id="alice", process=GRAPH, created=started_at, updated=started_at))
    run_id = f"r-{job_id}"
    assert repository.begin_run(job_id, run_id, ENDED, started_at)
    return run_id


@pytest.fixture
def world(tables):
    repository, workflow, queue = DynamoJobRepository(), Workflow(), Queue()
    return repository, workflow, queue, Reaper(repository, workflow, queue, POLICY)


def test_healthy_long_runs_beyond_a_page_cannot_starve_a_lost_one(world, monkeypatch):
    repository, workflow, queue, reaper = world
    monkeypatch.setattr(jobs_store, "QUIET_JOBS_PAGE_SIZE", 2)
    # Given five healthy runs, quiet for longer than a lost one (so they come first, oldest first)
    start = utcnow()
    for n in range(5):
        job_id = f"j-healthy-{n}"
        workflow.alive.add((job_id, queued_job(repository, job_id, start + timedelta(seconds=n))))
    queued_job(repository, "j-lost", start + timedelta(minutes=1))
    # When a round runs with time to spare
    ended = reaper.run(now=start + LATER, time_left_s=lambda: 60.0)
    # Then every quiet run was looked at, across pages, and only the lost one ended
    assert len(workflow.asked) == 6
    assert [(e.job_id, e.status, e.reason) for e in ended] == [("j-lost", JobStatus.ERROR, NEVER_STARTED_REASON)]
    assert queue.events == ended


def test_a_round_short_of_time_stops_and_the_next_goes_on(world):
    repository, workflow, queue, reaper = world
    start = utcnow()
    for n in range(3):
        queued_job(repository, f"j-lost-{n}", start + timedelta(seconds=n))
    # When a round has time for two of them
    time_left = iter([60.0, 60.0, 5.0])
    first = reaper.run(now=start + LATER, time_left_s=lambda: next(time_left))
    assert [e.job_id for e in first] == ["j-lost-0", "j-lost-1"]
    # Then the next round (the first two still read queued until the consumer applies them) reaches the third
    second = reaper.run(now=start + LATER, time_left_s=lambda: 60.0)
    assert "j-lost-2" in [e.job_id for e in second]


def test_the_stale_threshold_is_a_setting():
    assert Settings.from_env({}).reaper_stale_after_s == 15 * 60
    assert Settings.from_env({"STRATUS_REAPER_STALE_AFTER_S": "120"}).reaper_stale_after_s == 120
