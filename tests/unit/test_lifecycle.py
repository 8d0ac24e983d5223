"""The job lifecycle's rules as data (`stratus.domain.lifecycle`), and the jobs store's conditional write making
the same decision as `applies` for every pair of statuses (against the real table definition)."""

from __future__ import annotations

import itertools

import pytest

from stratus.domain.jobs import Job, apply_status_event
from stratus.domain.lifecycle import (
    ACTIVE,
    ENDED,
    INVALID,
    ORDER_STATUSES,
    STARTABLE,
    TRANSITIONS,
    JobStatus,
    applies,
    job_status_of_order,
    moves_from,
    order_status,
)
from stratus.events import StatusEvent
from stratus.store.jobs import DynamoJobRepository
from stratus.store.models import JobModel

GRAPH = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}


def test_transitions_only_move_forward_and_only_running_repeats():
    for target, sources in TRANSITIONS.items():
        for source in sources:
            assert source.rank < target.rank or source is target is JobStatus.RUNNING, (source, target)
    assert moves_from(JobStatus.CREATED) == frozenset()  # nothing moves a job back to created
    assert all(not (TRANSITIONS[target] & set(ENDED)) for target in JobStatus)  # an end is final for its run
    assert set(STARTABLE) == {JobStatus.CREATED, *ENDED} and set(ACTIVE).isdisjoint(STARTABLE)
    assert [s for s in JobStatus if s.is_terminal] == list(ENDED)


@pytest.mark.parametrize("status", list(JobStatus))
def test_a_repeated_event_is_a_no_op_except_a_rising_progress(status):
    if status is JobStatus.RUNNING:
        assert not applies(status, "r1", 60, status, "r1", 60)
        assert not applies(status, "r1", 60, status, "r1", 30)
        assert applies(status, "r1", 60, status, "r1", 61)
    else:
        assert not applies(status, "r1", None, status, "r1")


def test_out_of_order_and_other_runs_events_are_no_ops():
    assert not applies(JobStatus.RUNNING, "r1", 0, JobStatus.QUEUED, "r1")
    assert not applies(JobStatus.FINISHED, "r1", 100, JobStatus.ERROR, "r1")
    assert not applies(JobStatus.QUEUED, "r2", 0, JobStatus.FINISHED, "r1")  # an old run's late end
    assert not applies(JobStatus.CREATED, None, None, JobStatus.QUEUED, "r1")  # a job that never ran
    assert applies(JobStatus.QUEUED, "r1", 0, JobStatus.FINISHED, "r1")  # skipping running is forward


def test_the_order_view_of_job_statuses():
    assert [order_status(s, None) for s in JobStatus] == \
        ["RECEIVED", "QUEUED", "RUNNING", "SUCCESS", "FAILED", "CANCELLED"]
    assert order_status(JobStatus.ERROR, "NoDataAvailable") == INVALID
    assert order_status(JobStatus.FINISHED, "NoDataAvailable") == "SUCCESS"
    assert {name: job_status_of_order(name.lower()) for name in ORDER_STATUSES} == {
        "RECEIVED": JobStatus.CREATED, "QUEUED": JobStatus.QUEUED, "RUNNING": JobStatus.RUNNING,
        "SUCCESS": JobStatus.FINISHED, "FAILED": JobStatus.ERROR, "INVALID": JobStatus.ERROR,
        "CANCELLED": JobStatus.CANCELED}
    assert job_status_of_order("DONE") is None


def test_the_stores_conditional_write_decides_like_applies(tables):
    repository = DynamoJobRepository()
    cases = list(itertools.product(JobStatus, JobStatus, ("r1", "r2"), (None, 50)))
    for n, (current, incoming, event_run, event_progress) in enumerate(cases):
        job_id = f"j-{n}"
        repository.add(Job(job_id=job_id, user_id="alice", process=GRAPH))
        JobModel(job_id).update(actions=[JobModel.status.set(current.value), JobModel.run_id.set("r1"),
                                         JobModel.progress.set(40)])
        event = StatusEvent(job_id=job_id, run_id=event_run, status=incoming, progress=event_progress)
        expected = applies(current, "r1", 40, incoming, event_run, event_progress)
        assert apply_status_event(repository, event) == expected, (current, incoming, event_run, event_progress)
        assert JobModel.get(job_id).status == (incoming if expected else current).value
