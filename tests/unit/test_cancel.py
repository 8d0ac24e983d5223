"""Cancel (`DELETE /jobs/{job_id}/results`) and update rules of `JobService`, against the real tables."""

import pytest

from stratus.domain.estimate import CostModel, GraphEstimate, LoadEstimate, estimate_job
from stratus.domain.jobs import JobService, apply_status_event
from stratus.errors import JobLockedException, NoDataForUpdateException
from stratus.events import JobStatus, StatusEvent
from stratus.store.jobs import DynamoJobRepository

GRAPH = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}


class RecordingWorkflow:
    def __init__(self):
        self.started, self.stopped = [], []

    def start(self, job_id, run_id):
        self.started.append((job_id, run_id))

    def stop(self, job_id, run_id):
        self.stopped.append((job_id, run_id))


@pytest.fixture
def service(tables):
    workflow = RecordingWorkflow()
    return JobService(DynamoJobRepository(), workflow), workflow


def test_cancel_wins_over_late_events_of_its_run(service):
    jobs, workflow = service
    # Given a started run that was queued
    job = jobs.create_job("alice", {"process": GRAPH})
    jobs.start_job("alice", job.job_id)
    run_id = workflow.started[-1][1]
    repo = DynamoJobRepository()
    assert jobs.get_job("alice", job.job_id).status is JobStatus.QUEUED
    # When it is canceled twice
    assert jobs.stop_job("alice", job.job_id)
    assert not jobs.stop_job("alice", job.job_id)
    # Then the execution was stopped once and late events change nothing
    assert workflow.stopped == [(job.job_id, run_id)]
    for late in (JobStatus.RUNNING, JobStatus.FINISHED, JobStatus.ERROR):
        assert not apply_status_event(repo, StatusEvent(job_id=job.job_id, run_id=run_id, status=late))
    assert jobs.get_job("alice", job.job_id).status is JobStatus.CANCELED


def test_cancel_without_a_run_does_nothing(service):
    jobs, workflow = service
    job = jobs.create_job("alice", {"process": GRAPH})
    assert not jobs.stop_job("alice", job.job_id)
    assert workflow.stopped == [] and jobs.get_job("alice", job.job_id).status is JobStatus.CREATED


def test_update_rules(service):
    jobs, workflow = service
    job = jobs.create_job("alice", {"process": GRAPH})
    with pytest.raises(NoDataForUpdateException):
        jobs.update_job("alice", job.job_id, {"unknown": 1})
    jobs.start_job("alice", job.job_id)
    with pytest.raises(JobLockedException):  # queued at once by the start
        jobs.update_job("alice", job.job_id, {"title": "x"})


def test_cost_model_is_linear_with_a_minimum_duration():
    model = CostModel(cost_per_gb=0.5, seconds_per_gb=10, min_duration_s=60)
    graph = GraphEstimate((LoadEstimate("l", "c", width=1000, height=1000, dates=25, bands=5),))  # 1 GB
    estimate = estimate_job(graph, model)
    assert (estimate.size_bytes, estimate.costs, estimate.duration_s) == (1_000_000_000, 0.5, 60)
    assert estimate_job(GraphEstimate(graph.loads * 10), model).duration_s == 100


class RecordingStatusQueue:
    def __init__(self):
        self.events = []

    def status(self, event):
        self.events.append(event)


def test_a_cancel_sends_its_end_to_the_status_queue_once(tables):
    workflow, queue = RecordingWorkflow(), RecordingStatusQueue()
    jobs = JobService(DynamoJobRepository(), workflow, events=queue)
    job = jobs.create_job("alice", {"process": GRAPH})
    jobs.start_job("alice", job.job_id)
    run_id = workflow.started[-1][1]
    # When the job is canceled twice
    assert jobs.stop_job("alice", job.job_id)
    assert not jobs.stop_job("alice", job.job_id)
    # Then one canceled event of its run went to the queue, and the job reads canceled at once
    assert [(e.job_id, e.run_id, e.status) for e in queue.events] == [(job.job_id, run_id, JobStatus.CANCELED)]
    assert jobs.get_job("alice", job.job_id).status is JobStatus.CANCELED
    # and the consumer applying it changes nothing more
    assert not apply_status_event(DynamoJobRepository(), queue.events[0])
