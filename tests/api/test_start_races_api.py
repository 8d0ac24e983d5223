"""One run per start, under parallel requests: the start is one conditional write, so of parallel starts
(several API containers at once on AWS) exactly one begins a run and one execution; the others see that run.
The requests run in threads against the domain services of a real deployment in the emulator (Powertools
keeps the current request in a class attribute, so one handler in one process is never called in parallel,
exactly as one Lambda container never is)."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import boto3

from stratus.backend import Backend
from stratus.domain.principal import Principal
from stratus.events import JobStatus, StatusEvent
from stratus_local.handlers import load_handler
from stratus import resources

from tests.api.test_order_api import BOLZANO, JUNE, Customers, _deliver_status_events, _queued, demo_catalog  # noqa: F401

PARALLEL = 20
GRAPH = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}


def executions(api) -> list[dict]:
    sfn = boto3.client("stepfunctions", region_name="eu-central-1")
    return sfn.list_executions(stateMachineArn=api.settings.state_machine_arn)["executions"]


def in_parallel(count: int, call) -> list:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: call(), range(count)))


def test_parallel_starts_begin_one_run_and_the_job_is_queued_at_once(api):
    # Given a job
    job_id = api.post("/openeo/1.2/jobs", user="alice", json_body={"process": GRAPH}).headers["openeo-identifier"]
    jobs = Backend(api.settings).jobs
    # When it is started 20 times at once
    started = in_parallel(PARALLEL, lambda: jobs.start_job("alice", job_id))
    # Then exactly one start began a run, with one execution, and the job is queued under that run
    assert started.count(True) == 1
    [execution] = executions(api)
    job = jobs.get_job("alice", job_id)
    assert job.status is JobStatus.QUEUED and job.queued and execution["name"] == f"{job_id}-{job.run_id}"
    # And through the API a start of the pending run changes nothing (202)
    assert api.post(f"/openeo/1.2/jobs/{job_id}/results", user="alice").status == 202
    assert len(executions(api)) == 1 and jobs.get_job("alice", job_id).run_id == job.run_id


def test_a_start_right_after_an_api_start_reads_queued(api):
    job_id = api.post("/openeo/1.2/jobs", user="alice", json_body={"process": GRAPH}).headers["openeo-identifier"]
    assert api.post(f"/openeo/1.2/jobs/{job_id}/results", user="alice").status == 202
    assert api.get(f"/openeo/1.2/jobs/{job_id}", user="alice").json()["status"] == "queued"


def test_parallel_orders_with_one_idempotency_key_make_one_order_and_one_execution(api, demo_catalog):
    customers = Customers(api)
    customers.add("cus-erin")
    principal = Principal(user_id="cus-erin", scopes=frozenset({"service:ndvi-composite"}))
    orders = Backend(api.settings).orders
    body = {"parameters": {"area": BOLZANO, **JUNE}}
    # When 20 identical orders with one key arrive at once
    placed = in_parallel(PARALLEL, lambda: orders.place_order(principal, "ndvi-composite", body, "key-1"))
    # Then there is one order, created once, with one execution
    assert len({order.order_id for order, _ in placed}) == 1
    assert [created for _, created in placed].count(True) == 1
    assert len(executions(api)) == 1
    order_id = placed[0][0].order_id
    # And its log has no internal errors, only the receipt
    logs = customers.request("GET", f"/orders/{order_id}/logs", "cus-erin").json()["logs"]
    assert [entry["level"] for entry in logs] == ["INFO"]
    assert not any("Error" in entry["message"] for entry in logs)


def test_a_start_that_cannot_reach_the_workflow_ends_its_run(api, monkeypatch):
    job_id = api.post("/openeo/1.2/jobs", user="alice", json_body={"process": GRAPH}).headers["openeo-identifier"]
    jobs = Backend(api.settings).jobs

    def outage(job_id, run_id):
        raise ConnectionError("Step Functions is unreachable")

    # only the outage is undone below, not the test's environment (the clients are made on first use)
    with monkeypatch.context() as during_outage:
        during_outage.setattr(jobs._workflow, "start", outage)
        try:
            jobs.start_job("alice", job_id)
        except ConnectionError:
            pass
        job = jobs.get_job("alice", job_id)
        # the run did not hang in `queued`: it ended, and the job may be started again
        assert job.status is JobStatus.ERROR and "could not be started" in job.reason
    assert jobs.start_job("alice", job_id) and jobs.get_job("alice", job_id).status is JobStatus.QUEUED


def _status_records(api, *events: StatusEvent) -> None:
    sqs = boto3.client("sqs", region_name="eu-central-1")
    for event in events:
        sqs.send_message(QueueUrl=api.settings.status_queue_url, MessageBody=event.model_dump_json(exclude_none=True))
    load_handler(resources.FUNCTIONS["status"])
    sys.modules["stratus_fn_StatusConsumer"].backend.cache_clear()
    _deliver_status_events(api, _queued(api, "status"))


def test_out_of_order_and_stale_events_are_no_ops_and_say_nothing(api):
    # Given a started job
    job_id = api.post("/openeo/1.2/jobs", user="alice", json_body={"process": GRAPH}).headers["openeo-identifier"]
    assert api.post(f"/openeo/1.2/jobs/{job_id}/results", user="alice").status == 202
    run_id = Backend(api.settings).jobs_repository.get(job_id).run_id
    logs_before = api.get(f"/openeo/1.2/jobs/{job_id}/logs", user="alice").json()["logs"]
    # When a `created` event and a failure of a stale run arrive (the consumer must not fail on them)
    stale = StatusEvent(job_id=job_id, run_id="an-old-run", status=JobStatus.ERROR, reason="StaleRunError",
                        detail='{"errorType": "StaleRunError", "errorMessage": "job has no current run"}')
    _status_records(api, StatusEvent(job_id=job_id, run_id=run_id, status=JobStatus.CREATED), stale)
    # Then the job is unchanged and its owner reads nothing about them
    job = api.get(f"/openeo/1.2/jobs/{job_id}", user="alice").json()
    assert job["status"] == "queued" and "reason" not in job
    assert api.get(f"/openeo/1.2/jobs/{job_id}/logs", user="alice").json()["logs"] == logs_before


def test_a_failure_of_the_current_run_is_told_without_internals(api):
    job_id = api.post("/openeo/1.2/jobs", user="alice", json_body={"process": GRAPH}).headers["openeo-identifier"]
    assert api.post(f"/openeo/1.2/jobs/{job_id}/results", user="alice").status == 202
    run_id = Backend(api.settings).jobs_repository.get(job_id).run_id
    failure = StatusEvent(job_id=job_id, run_id=run_id, status=JobStatus.ERROR, reason="KeyError",
                          detail='{"errorType": "KeyError", "errorMessage": "\'graph_key\'", "stackTrace": ["x"]}')
    _status_records(api, failure)
    job = api.get(f"/openeo/1.2/jobs/{job_id}", user="alice").json()
    assert job["status"] == "error" and "KeyError" not in job["reason"] and "internal error" in job["reason"]
    messages = [e["message"] for e in api.get(f"/openeo/1.2/jobs/{job_id}/logs", user="alice").json()["logs"]]
    assert job["reason"] in messages and not any("KeyError" in m or "graph_key" in m for m in messages)


def test_canceled_and_failed_runs_leave_no_files_but_finished_runs_keep_theirs(api):
    s3 = boto3.client("s3", region_name="eu-central-1")
    bucket = api.settings.results_bucket
    repository = Backend(api.settings).jobs_repository

    def started_with_partial_files() -> tuple[str, str]:
        job_id = api.post("/openeo/1.2/jobs", user="alice", json_body={"process": GRAPH}).headers["openeo-identifier"]
        assert api.post(f"/openeo/1.2/jobs/{job_id}/results", user="alice").status == 202
        run_id = repository.get(job_id).run_id
        for name in ("graph.json", "results/part-0.tif"):
            s3.put_object(Bucket=bucket, Key=f"jobs/{job_id}/runs/{run_id}/{name}", Body=b"x")
        return job_id, run_id

    def files(job_id: str) -> list[str]:
        return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"jobs/{job_id}/").get("Contents", [])]

    canceled, _ = started_with_partial_files()
    assert api.delete(f"/openeo/1.2/jobs/{canceled}/results", user="alice").status == 204
    failed, failed_run = started_with_partial_files()
    _status_records(api, StatusEvent(job_id=failed, run_id=failed_run, status=JobStatus.ERROR, reason="boom"))
    finished, finished_run = started_with_partial_files()
    _status_records(api, StatusEvent(job_id=finished, run_id=finished_run, status=JobStatus.FINISHED, progress=100))

    assert files(canceled) == [] and files(failed) == []
    assert len(files(finished)) == 2
