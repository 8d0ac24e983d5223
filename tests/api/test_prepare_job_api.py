"""PrepareJob through the real handler: the snapshot it writes is what the processing container reads,
its output is what the state machine hands the Batch job, and a stale run prepares nothing."""

import sys
from datetime import UTC, datetime

import boto3
import pytest

from stratus import resources
from stratus.backend import Backend
from stratus.domain.runs import StaleRunError
from stratus.events import JobStatus
from stratus.run_contract import RunConfig
from stratus_local.handlers import load_handler
from stratus_local.lambda_context import LocalLambdaContext
from stratus_processing.runner import load_snapshot

GRAPH = {"a": {"process_id": "absolute", "arguments": {"x": -1}, "result": True}}


@pytest.fixture
def prepare_job(api):
    handler = load_handler(resources.FUNCTIONS["prepare_job"])
    sys.modules[handler.__module__].backend.cache_clear()
    yield lambda event: handler(event, LocalLambdaContext(function_name="prepare-job"))
    sys.modules[handler.__module__].backend.cache_clear()


def started_job(api, run_id: str) -> str:
    job_id = api.post("/openeo/1.2/jobs", user="alice",
                      json_body={"process": {"process_graph": GRAPH, "parameters": []}}).headers["openeo-identifier"]
    assert Backend(api.settings).jobs_repository.begin_run(job_id, run_id, (JobStatus.CREATED,), datetime.now(UTC))
    return job_id


def snapshot_keys(api, job_id: str) -> list[str]:
    s3 = boto3.client("s3", region_name="eu-central-1")
    listing = s3.list_objects_v2(Bucket=api.settings.results_bucket, Prefix=f"jobs/{job_id}/")
    return [o["Key"] for o in listing.get("Contents", [])]


def test_the_processing_reads_what_prepare_job_wrote(api, prepare_job):
    job_id = started_job(api, "run-1")
    output = prepare_job({"job_id": job_id, "run_id": "run-1"})
    run = RunConfig.for_run(job_id, "run-1")
    assert output == run.prepared()
    snapshot = load_snapshot(boto3.client("s3", region_name="eu-central-1"), api.settings.results_bucket,
                             output["graph_key"])
    assert snapshot.process == {"process_graph": GRAPH, "parameters": []} and snapshot.user_processes == {}


def test_a_stale_run_prepares_nothing(api, prepare_job):
    job_id = started_job(api, "run-2")
    for stale in ({"job_id": job_id, "run_id": "run-1"}, {"job_id": "no-such-job", "run_id": "run-2"}):
        with pytest.raises(StaleRunError):
            prepare_job(stale)
    assert snapshot_keys(api, job_id) == []
    assert snapshot_keys(api, "no-such-job") == []
