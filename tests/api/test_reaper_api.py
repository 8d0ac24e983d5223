"""The reaper ends lost runs through the status path and leaves live ones alone; against a deployment in
the emulator (its Step Functions records executions; Batch jobs are made in its Batch)."""

from __future__ import annotations

import sys
from datetime import timedelta

import boto3

from stratus import resources
from stratus.backend import Backend
from stratus.domain.jobs import ENDED
from stratus.domain.reaper import LOST_REASON, NEVER_STARTED_REASON, NO_CAPACITY_REASON, RunState
from stratus.events import JobStatus, utcnow
from stratus.store.models import JobModel
from stratus_local.handlers import load_handler
from stratus_local.lambda_context import LocalLambdaContext

from tests.api.test_order_api import _deliver_status_events, _queued

GRAPH = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
LATER = timedelta(hours=2)  # well past every threshold of the policy


def started_job(api) -> tuple[str, str]:
    job_id = api.post("/openeo/1.2/jobs", user="alice", json_body={"process": GRAPH}).headers["openeo-identifier"]
    assert api.post(f"/openeo/1.2/jobs/{job_id}/results", user="alice").status == 202
    return job_id, Backend(api.settings).jobs_repository.get(job_id).run_id


def reap(api, now) -> list:
    backend = Backend(api.settings)
    ended = backend.reaper.run(now=now)
    messages = _queued(api, "status")
    if messages:
        _deliver_status_events(api, messages)
    return ended


def status(api, job_id: str) -> dict:
    return api.get(f"/openeo/1.2/jobs/{job_id}", user="alice").json()


def test_a_run_whose_execution_was_stopped_behind_its_back_ends_in_error(api):
    job_id, run_id = started_job(api)
    sfn = boto3.client("stepfunctions", region_name="eu-central-1")
    [execution] = sfn.list_executions(stateMachineArn=api.settings.state_machine_arn)["executions"]
    sfn.stop_execution(executionArn=execution["executionArn"])
    ended = reap(api, utcnow() + LATER)
    assert [(e.job_id, e.status) for e in ended] == [(job_id, JobStatus.ERROR)]
    job = status(api, job_id)
    assert job["status"] == "error" and "aborted" in job["reason"]


def test_a_queued_job_without_an_execution_ends_but_only_after_the_grace_period(api):
    # Given a run whose start never reached Step Functions (written, then the start was lost)
    job_id = api.post("/openeo/1.2/jobs", user="alice", json_body={"process": GRAPH}).headers["openeo-identifier"]
    repository = Backend(api.settings).jobs_repository
    assert repository.begin_run(job_id, "lostrun", ENDED, utcnow())
    # Then soon after, the reaper waits; later it ends the job, once, with a clear reason
    assert reap(api, utcnow() + timedelta(minutes=1)) == []
    assert len(reap(api, utcnow() + LATER)) == 1
    job = status(api, job_id)
    assert job["status"] == "error" and job["reason"] == NEVER_STARTED_REASON
    assert reap(api, utcnow() + 2 * LATER) == []  # ended jobs leave the index


def test_a_succeeded_execution_whose_event_was_lost_finishes_the_job(api):
    job_id, run_id = started_job(api)
    reaper = Backend(api.settings).reaper
    from stratus.domain.reaper import RunState

    job = Backend(api.settings).jobs_repository.get(job_id)
    event = reaper.verdict(job, RunState(execution="SUCCEEDED"), utcnow() + LATER)
    assert event.status is JobStatus.FINISHED and event.run_id == run_id


def test_a_batch_job_that_never_finds_capacity_is_stopped(api):
    job_id, run_id = started_job(api)
    reaper = Backend(api.settings).reaper
    from stratus.domain.reaper import RunState

    job = Backend(api.settings).jobs_repository.get(job_id)
    waiting = RunState(execution="RUNNING", batch_status="RUNNABLE", batch_since=utcnow())
    assert reaper.verdict(job, waiting, utcnow() + timedelta(minutes=5)) is None
    event = reaper.verdict(job, waiting, utcnow() + LATER)
    assert event.status is JobStatus.ERROR and event.reason == NO_CAPACITY_REASON.format(minutes=60)
    sfn = boto3.client("stepfunctions", region_name="eu-central-1")
    [execution] = sfn.list_executions(stateMachineArn=api.settings.state_machine_arn)["executions"]
    assert execution["status"] == "ABORTED"  # the run was stopped, not only marked


def test_live_runs_and_recent_runs_are_left_alone(api):
    running_id, _ = started_job(api)  # its execution is alive
    assert reap(api, utcnow() + LATER) == []
    assert status(api, running_id)["status"] == "queued"


def test_the_scheduled_function_runs_the_reaper(api):
    job_id = api.post("/openeo/1.2/jobs", user="alice", json_body={"process": GRAPH}).headers["openeo-identifier"]
    Backend(api.settings).jobs_repository.begin_run(job_id, "lostrun", ENDED, utcnow() - LATER)
    JobModel(job_id).update(actions=[JobModel.updated.set(utcnow() - LATER), JobModel.queued.set(utcnow() - LATER)])
    handler = load_handler(resources.FUNCTIONS["reaper"])
    sys.modules["stratus_fn_JobReaper"].backend.cache_clear()
    assert handler({"source": "aws.events"}, LocalLambdaContext(function_name="stratus-reaper")) == {"ended": 1}
    _deliver_status_events(api, _queued(api, "status"))
    assert status(api, job_id)["status"] == "error"


def test_the_functions_stale_threshold_comes_from_its_setting(api, monkeypatch):
    # Given a lost run queued 15 minutes ago, last updated 5 minutes ago
    job_id = api.post("/openeo/1.2/jobs", user="alice", json_body={"process": GRAPH}).headers["openeo-identifier"]
    Backend(api.settings).jobs_repository.begin_run(job_id, "lostrun", ENDED, utcnow())
    JobModel(job_id).update(actions=[JobModel.updated.set(utcnow() - timedelta(minutes=5)),
                                     JobModel.queued.set(utcnow() - timedelta(minutes=15))])
    handler = load_handler(resources.FUNCTIONS["reaper"])
    context = LocalLambdaContext(function_name="stratus-reaper", timeout_s=resources.FUNCTIONS["reaper"].timeout_s)
    # Then the default threshold (15 minutes) leaves it for now, a deployment's 60 s looks at it and ends it
    sys.modules["stratus_fn_JobReaper"].backend.cache_clear()
    assert handler({"source": "aws.events"}, context) == {"ended": 0}
    monkeypatch.setenv("STRATUS_REAPER_STALE_AFTER_S", "60")
    sys.modules["stratus_fn_JobReaper"].backend.cache_clear()
    assert handler({"source": "aws.events"}, context) == {"ended": 1}


def test_a_failed_execution_ends_the_job_with_its_caught_failure_in_neutral_words(api):
    job_id, run_id = started_job(api)
    backend = Backend(api.settings)
    job = backend.jobs_repository.get(job_id)
    # Given the workflow reports the run's execution failed, with the Batch job's failure its Catch saw
    cause = '{"StatusReason": "Essential container in task exited", "Container": {"ExitCode": 3}}'
    failed = RunState(execution="FAILED", error="States.TaskFailed", cause=cause)
    event = backend.reaper.verdict(job, failed, utcnow() + LATER)
    # When its verdict goes the status path
    backend.events.status(event)
    _deliver_status_events(api, _queued(api, "status"))
    # Then the job's reason is the failure's, worded for users (no AWS-internal text), and its log says so
    described = status(api, job_id)
    assert described["status"] == "error"
    assert described["reason"] == "Processing failed (exit code 3); see the job's log."
    logs = api.get(f"/openeo/1.2/jobs/{job_id}/logs?level=error", user="alice").json()["logs"]
    assert [entry["message"] for entry in logs] == [described["reason"]]
    # A failure that can't be found (only the Fail state's words) reads as a lost run
    unknown = backend.reaper.verdict(job, RunState(execution="FAILED"), utcnow() + LATER)
    assert unknown.reason == LOST_REASON.format(state="failed") and unknown.detail is None
