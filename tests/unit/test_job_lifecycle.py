"""Job status transitions are monotonic and idempotent (against the real table definitions)."""

from datetime import datetime, timedelta, timezone

import pytest

from stratus.domain.jobs import JobService, apply_status_event, describe_workflow_failure
from stratus.errors import JobNotFoundException, ProcessGraphMissingException
from stratus.events import JobStatus, StatusEvent
from stratus.store.jobs import DynamoJobRepository

GRAPH = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}


class RecordingWorkflow:
    def __init__(self):
        self.started = []

    def start(self, job_id, run_id):
        self.started.append((job_id, run_id))


@pytest.fixture
def service(tables):
    workflow = RecordingWorkflow()
    return JobService(DynamoJobRepository(), workflow), workflow


def started_job(service):
    jobs, workflow = service
    job = jobs.create_job("alice", {"process": GRAPH, "title": "t"})
    assert jobs.start_job("alice", job.job_id)
    return jobs, job.job_id, workflow.started[-1][1]


def event(job_id, run_id, status, **kw):
    return StatusEvent(job_id=job_id, run_id=run_id, status=status, **kw)


def test_create_requires_process_graph(service):
    jobs, _ = service
    with pytest.raises(ProcessGraphMissingException):
        jobs.create_job("alice", {"process": {}})


def test_other_users_job_is_not_found(service):
    jobs, _ = service
    job = jobs.create_job("alice", {"process": GRAPH})
    with pytest.raises(JobNotFoundException):
        jobs.get_job("bob", job.job_id)


def test_lifecycle_moves_forward_only(service):
    jobs, job_id, run_id = started_job(service)
    repo = DynamoJobRepository()
    # Given a started job: queued at once, so the state machine's `queued` only confirms it
    assert jobs.get_job("alice", job_id).status is JobStatus.QUEUED
    assert not apply_status_event(repo, event(job_id, run_id, JobStatus.QUEUED))
    assert apply_status_event(repo, event(job_id, run_id, JobStatus.RUNNING, progress=0))
    # When a duplicate queued event arrives late, Then nothing changes
    assert not apply_status_event(repo, event(job_id, run_id, JobStatus.QUEUED))
    assert jobs.get_job("alice", job_id).status is JobStatus.RUNNING
    # When it finishes, Then a late running or error event cannot move it back or sideways
    assert apply_status_event(repo, event(job_id, run_id, JobStatus.FINISHED, progress=100))
    assert not apply_status_event(repo, event(job_id, run_id, JobStatus.RUNNING, progress=50))
    assert not apply_status_event(repo, event(job_id, run_id, JobStatus.ERROR, reason="late"))
    job = jobs.get_job("alice", job_id)
    assert job.status is JobStatus.FINISHED and job.progress == 100 and job.reason is None
    assert job.queued and job.started and job.finished


def test_out_of_order_events_keep_the_latest_state(service):
    jobs, job_id, run_id = started_job(service)
    repo = DynamoJobRepository()
    t0 = datetime.now(timezone.utc)
    # running arrives before queued
    assert apply_status_event(repo, event(job_id, run_id, JobStatus.RUNNING, progress=0, time=t0))
    assert not apply_status_event(repo, event(job_id, run_id, JobStatus.QUEUED, time=t0 - timedelta(seconds=1)))
    assert jobs.get_job("alice", job_id).status is JobStatus.RUNNING


def test_progress_never_decreases(service):
    jobs, job_id, run_id = started_job(service)
    repo = DynamoJobRepository()
    assert apply_status_event(repo, event(job_id, run_id, JobStatus.RUNNING, progress=60))
    assert not apply_status_event(repo, event(job_id, run_id, JobStatus.RUNNING, progress=30))
    assert jobs.get_job("alice", job_id).progress == 60


def test_events_of_an_old_run_are_ignored(service):
    jobs, job_id, old_run = started_job(service)
    repo = DynamoJobRepository()
    assert apply_status_event(repo, event(job_id, old_run, JobStatus.ERROR, reason="boom"))
    # restart: a new run
    assert jobs.start_job("alice", job_id)
    _, new_run = service[1].started[-1]
    assert new_run != old_run
    assert not apply_status_event(repo, event(job_id, old_run, JobStatus.FINISHED))
    job = jobs.get_job("alice", job_id)
    assert job.status is JobStatus.QUEUED and job.reason is None and job.run_id == new_run


def test_starting_a_running_job_changes_nothing(service):
    jobs, job_id, run_id = started_job(service)
    apply_status_event(DynamoJobRepository(), event(job_id, run_id, JobStatus.RUNNING))
    assert not jobs.start_job("alice", job_id)
    assert len(service[1].started) == 1


def test_listing_is_per_user_and_paginated(service):
    jobs, _ = service
    for _ in range(3):
        jobs.create_job("alice", {"process": GRAPH})
    jobs.create_job("bob", {"process": GRAPH})
    first, token = jobs.list_jobs("alice", limit=2)
    assert len(first) == 2 and token
    rest, _ = jobs.list_jobs("alice", limit=2, after=token)
    assert len(rest) == 1
    assert {j.job_id for j in first}.isdisjoint({j.job_id for j in rest})
    assert all(j.user_id == "alice" for j in first + rest)


def test_workflow_failure_reasons_are_readable():
    cause = '{"JobName": "x", "Status": "FAILED", "StatusReason": "Essential container in task exited", ' \
            '"Container": {"ExitCode": 1}}'
    # AWS-internal wording stays out, the exit code is kept
    assert describe_workflow_failure("States.TaskFailed", cause) == "Processing failed (exit code 1); see the job's log."
    spot = '{"StatusReason": "Host EC2 (instance i-1) terminated.", "Container": {"ExitCode": 137}}'
    # Batch's own reasons are worded for users, naming no instance; unknown ones are not shown
    spot_reason = describe_workflow_failure("States.TaskFailed", spot)
    assert "i-1" not in spot_reason and "EC2" not in spot_reason and "start the job again" in spot_reason
    assert spot_reason.endswith("(exit code 137); see the job's log.")
    memory = '{"StatusReason": "OutOfMemoryError: Container killed due to memory usage", ' \
             '"Container": {"ExitCode": 137}}'
    assert describe_workflow_failure("States.TaskFailed", memory) == \
        "Processing ran out of memory (exit code 137); see the job's log."
    pull = '{"StatusReason": "CannotPullContainerError: pull image manifest has been retried 5 time(s): ' \
           'arn:aws:ecr:eu-central-1:123456789012:repository/stratus", "Container": {}}'
    assert describe_workflow_failure("States.TaskFailed", pull) == "Processing failed; see the job's log."
    batch_timeout = '{"StatusReason": "Job attempt duration exceeded timeout", "Container": {"ExitCode": 137}}'
    assert describe_workflow_failure("States.TaskFailed", batch_timeout, max_run_hours=2) == \
        "The job took longer than the 2 hours a run may take and was stopped."
    # internal exceptions of our own functions are never named to users
    lambda_cause = '{"errorMessage": "job j has no current run r", "errorType": "StaleRunError"}'
    reason = describe_workflow_failure("StaleRunError", lambda_cause)
    assert "StaleRunError" not in reason and "current run" not in reason and "internal error" in reason
    assert "longer than" in describe_workflow_failure("States.Timeout", None)
