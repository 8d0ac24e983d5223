"""`StatusService.apply`: one status event against the real tables, the results bucket and the order notifier
(SES in the emulator)."""

from __future__ import annotations

import boto3
import pytest
from moto.ses.models import ses_backends

from stratus import catalog_layout
from stratus.adapters.email import SesEmailSender
from stratus.adapters.s3_results import S3ResultStore
from stratus.domain.estimate import CostModel
from stratus.domain.jobs import Job
from stratus.domain.lifecycle import ENDED
from stratus.domain.notifications import OrderNotifier
from stratus.domain.status import StatusService
from stratus.events import JobStatus, StatusEvent, utcnow
from stratus.store.jobs import DynamoJobRepository
from stratus.store.logs import DynamoLogRepository
from stratus.store.models import JobModel, UserModel
from stratus.store.order_notices import DynamoOrderEndStore

SENDER = "no-reply@stratus.example"
GRAPH = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
BATCH_FAILURE = '{"StatusReason": "Essential container in task exited", "Container": {"ExitCode": 2}}'


@pytest.fixture
def world(tables):
    s3 = boto3.client("s3", region_name="eu-central-1")
    s3.create_bucket(Bucket="results", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    ses = boto3.client("ses", region_name="eu-central-1")
    ses.verify_email_identity(EmailAddress=SENDER)
    UserModel("cus-1", password_hash="", name="Ada", email="ada@example.org", created=utcnow()).save()
    repository, logs = DynamoJobRepository(), DynamoLogRepository()
    service = StatusService(repository, logs, artifacts=S3ResultStore(s3, "results"),
                            notices=OrderNotifier(DynamoOrderEndStore(), SesEmailSender(ses, SENDER)),
                            cost_model=CostModel(cost_per_gb=0.1, seconds_per_gb=20.0, min_duration_s=60))
    return service, repository, logs, s3


def running_order(repository, s3, job_id="o-1", run_id="r1") -> None:
    repository.add(Job(job_id=job_id, user_id="cus-1", process=GRAPH))
    JobModel(job_id).update(actions=[JobModel.service_id.set("ndvi-composite"), JobModel.order.set({"notify": {}})])
    assert repository.begin_run(job_id, run_id, ENDED, utcnow())
    s3.put_object(Bucket="results", Key=catalog_layout.run_prefix(job_id, run_id) + "part.tif", Body=b"x")


def run_files(s3, job_id="o-1", run_id="r1") -> list[str]:
    listed = s3.list_objects_v2(Bucket="results", Prefix=catalog_layout.run_prefix(job_id, run_id))
    return [o["Key"] for o in listed.get("Contents", [])]


def inbox():
    return ses_backends["123456789012"]["eu-central-1"].sent_messages


def test_a_caught_failure_is_worded_logged_once_cleaned_up_and_told(world):
    service, repository, logs, s3 = world
    running_order(repository, s3)
    event = StatusEvent(job_id="o-1", run_id="r1", status=JobStatus.ERROR, reason="States.TaskFailed",
                        detail=BATCH_FAILURE)
    # When the Catch's event is applied, and redelivered
    first, again = service.apply(event), service.apply(event)
    # Then users read neutral words, operators get the raw failure, and it happened once
    assert first.applied and not again.applied
    assert first.event.reason == "Processing failed (exit code 2); see the job's log." and first.event.detail is None
    assert (first.workflow_failure.error, first.workflow_failure.cause) == ("States.TaskFailed", BATCH_FAILURE)
    assert repository.get("o-1").reason == first.event.reason
    assert [(e.level, e.message) for e in logs.list("o-1", None, 10)] == [("error", first.event.reason)]
    assert run_files(s3) == []
    assert (first.told, again.told) == ("FAILED", None) and len(inbox()) == 1


def test_an_old_runs_failure_changes_and_deletes_nothing(world):
    service, repository, logs, s3 = world
    running_order(repository, s3)
    outcome = service.apply(StatusEvent(job_id="o-1", run_id="r0", status=JobStatus.ERROR, reason="States.TaskFailed",
                                        detail=BATCH_FAILURE))
    assert not outcome.applied and repository.get("o-1").status is JobStatus.QUEUED
    assert logs.list("o-1", None, 10) == [] and run_files(s3) != [] and outcome.told is None


def test_a_finished_run_keeps_its_files_and_its_costs(world):
    service, repository, logs, s3 = world
    running_order(repository, s3)
    usage = {"duration": {"value": 40, "unit": "seconds"}}
    assert service.apply(StatusEvent(job_id="o-1", run_id="r1", status=JobStatus.RUNNING, progress=100,
                                     usage=usage)).applied
    outcome = service.apply(StatusEvent(job_id="o-1", run_id="r1", status=JobStatus.FINISHED, progress=100))
    job = repository.get("o-1")
    assert outcome.applied and outcome.workflow_failure is None and outcome.told == "SUCCESS"
    assert job.status is JobStatus.FINISHED and job.costs == pytest.approx(0.2)
    assert run_files(s3) != [] and logs.list("o-1", None, 10) == []


def test_a_failed_fan_out_run_keeps_its_tiles_until_a_later_run_finishes(world):
    service, repository, logs, s3 = world
    store = S3ResultStore(s3, "results")
    service = StatusService(repository, logs, artifacts=store, documents=store)
    # Given a fanned-out run (its plan) with a finished tile, a scratch file and its partial results
    running_order(repository, s3)
    prefix = catalog_layout.results_prefix("o-1", "r1")
    kept = [catalog_layout.graph_key("o-1", "r1"), catalog_layout.plan_key(prefix),
            catalog_layout.partial_manifest_key(prefix), catalog_layout.tile_record_key(prefix, "r0000c0000"),
            f"{catalog_layout.tile_prefix(prefix, 'r0000c0000')}result.tif"]
    for key in [*kept, catalog_layout.tile_items_key(prefix)]:
        s3.put_object(Bucket="results", Key=key, Body=b"{}")
    # When it ends error: the tiles, plan, snapshot and partial results stay, the rest goes
    assert service.apply(StatusEvent(job_id="o-1", run_id="r1", status=JobStatus.ERROR, reason="1 of 4 tiles failed"))
    assert sorted(run_files(s3)) == sorted(kept)
    # When a restart finishes whose results point to none of its files: they go too
    assert repository.begin_run("o-1", "r2", ENDED, utcnow())
    s3.put_object(Bucket="results", Key=catalog_layout.manifest_key(catalog_layout.results_prefix("o-1", "r2")),
                  Body=b'{"assets": {"result.vrt": {"key": "jobs/o-1/runs/r2/results/result.vrt"}}}')
    assert service.apply(StatusEvent(job_id="o-1", run_id="r2", status=JobStatus.FINISHED, progress=100))
    assert run_files(s3) == [] and run_files(s3, run_id="r2")


def test_a_finished_restart_keeps_the_errored_run_whose_tiles_its_results_use(world):
    service, repository, logs, s3 = world
    store = S3ResultStore(s3, "results")
    service = StatusService(repository, logs, artifacts=store, documents=store)
    running_order(repository, s3)
    prefix = catalog_layout.results_prefix("o-1", "r1")
    tile = f"{catalog_layout.tile_prefix(prefix, 'r0000c0000')}result.tif"
    for key in (catalog_layout.plan_key(prefix), catalog_layout.partial_manifest_key(prefix), tile):
        s3.put_object(Bucket="results", Key=key, Body=b"{}")
    assert service.apply(StatusEvent(job_id="o-1", run_id="r1", status=JobStatus.ERROR, reason="failed"))
    assert repository.begin_run("o-1", "r2", ENDED, utcnow())
    s3.put_object(Bucket="results", Key=catalog_layout.manifest_key(catalog_layout.results_prefix("o-1", "r2")),
                  Body=('{"assets": {"result_r0000c0000.tif": {"key": "%s"}}}' % tile).encode())
    assert service.apply(StatusEvent(job_id="o-1", run_id="r2", status=JobStatus.FINISHED, progress=100))
    assert tile in run_files(s3)
