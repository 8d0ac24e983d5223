"""A run's usage and costs: stored once per run, whatever order its events arrive in (against the
real table definitions)."""

from __future__ import annotations

import pytest

from stratus.domain.estimate import CostModel
from stratus.domain.jobs import JobService, apply_status_event, costs_of_usage
from stratus.events import JobStatus, StatusEvent
from stratus.store.jobs import DynamoJobRepository

GRAPH = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
MODEL = CostModel(cost_per_gb=0.1, seconds_per_gb=20.0, min_duration_s=60)


def usage(seconds: float) -> dict:
    return {"cpu": {"value": seconds * 1.5, "unit": "cpu-seconds"}, "duration": {"value": seconds, "unit": "seconds"},
            "memory": {"value": seconds * 100, "unit": "mb-seconds"}}


class Workflow:
    def __init__(self):
        self.runs = []

    def start(self, job_id, run_id):
        self.runs.append(run_id)


@pytest.fixture
def started(tables):
    workflow = Workflow()
    jobs = JobService(DynamoJobRepository(), workflow)
    job = jobs.create_job("alice", {"process": GRAPH})
    assert jobs.start_job("alice", job.job_id)
    return jobs, job.job_id, workflow


def status(job_id, run_id, value, **kw):
    return StatusEvent(job_id=job_id, run_id=run_id, status=value, **kw)


@pytest.mark.parametrize("usage_first", [True, False])
def test_usage_is_kept_whether_it_arrives_before_or_after_finished(started, usage_first):
    jobs, job_id, workflow = started
    run_id = workflow.runs[-1]
    repo = DynamoJobRepository()
    assert not apply_status_event(repo, status(job_id, run_id, JobStatus.QUEUED))  # queued by the start already
    assert apply_status_event(repo, status(job_id, run_id, JobStatus.RUNNING, progress=0))
    last_running = status(job_id, run_id, JobStatus.RUNNING, progress=100, usage=usage(40))
    finished = status(job_id, run_id, JobStatus.FINISHED, progress=100)
    for event in ((last_running, finished) if usage_first else (finished, last_running)):
        assert apply_status_event(repo, event, MODEL)
    job = jobs.get_job("alice", job_id)
    assert job.status is JobStatus.FINISHED and job.progress == 100
    assert job.usage == usage(40) and job.costs == pytest.approx(0.2)


def test_usage_is_recorded_once_per_run_and_dropped_by_a_restart(started):
    jobs, job_id, workflow = started
    first_run = workflow.runs[-1]
    repo = DynamoJobRepository()
    assert apply_status_event(repo, status(job_id, first_run, JobStatus.ERROR, reason="boom", usage=usage(3)), MODEL)
    # a redelivered or second report changes nothing
    assert not apply_status_event(repo, status(job_id, first_run, JobStatus.ERROR, reason="boom", usage=usage(9)),
                                  MODEL)
    assert jobs.get_job("alice", job_id).usage == usage(3)
    # a new run starts without usage, and a late report of the old run doesn't touch it
    assert jobs.start_job("alice", job_id)
    second_run = workflow.runs[-1]
    assert not apply_status_event(repo, status(job_id, first_run, JobStatus.RUNNING, progress=100,
                                               usage=usage(7)), MODEL)
    job = jobs.get_job("alice", job_id)
    assert (job.run_id, job.usage, job.costs) == (second_run, None, None)


def test_usage_without_cost_model_has_no_costs(started):
    jobs, job_id, workflow = started
    assert apply_status_event(DynamoJobRepository(), status(job_id, workflow.runs[-1], JobStatus.RUNNING,
                                                            progress=100, usage=usage(5)))
    job = jobs.get_job("alice", job_id)
    assert job.usage == usage(5) and job.costs is None


def test_costs_follow_the_estimate_model():
    assert costs_of_usage(usage(20), MODEL) == pytest.approx(0.1)  # 20 s = 1 GB's worth of processing
    assert costs_of_usage(usage(0), MODEL) == 0
    assert costs_of_usage({"duration": {"value": 1, "unit": "hours"}}, MODEL) is None
    assert costs_of_usage({"cpu": {"value": 1, "unit": "cpu-seconds"}}, MODEL) is None
    assert costs_of_usage({"duration": {"value": -1, "unit": "seconds"}}, MODEL) is None
