"""Spike: a Distributed Map over the planner's tile manifest in moto's Step Functions interpreter, set
up as the local runtime runs the job state machine (`stratus_local.moto_seams`: executing ASL, Lambda
in-process, Batch jobs as local processes). It pins what moto 5.2.5 does, including where it differs
from AWS (`docs/fanout.md`, "What moto runs"), so an upgrade that changes any of it fails here.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
import zipfile
from typing import Any

import boto3
import pytest
from botocore.config import Config

from stratus.domain.estimate import GraphEstimate, LoadEstimate
from stratus.domain.fanout_plan import RunShape, plan_run

from tests.integration.seamed_moto import LocalBatch, clients_of, seamed_moto_server

REGION = "eu-central-1"
BUCKET = "fanout-spike"
FAST = Config(retries={"max_attempts": 1, "mode": "standard"})
GRAPH = {"load": {"process_id": "load_collection", "arguments": {"id": "c"}},
         "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
                  "result": True}}


class TileFailed(Exception):
    pass


class TileCalls:
    """What the tile Lambda saw, and how many ran at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[dict] = []
        self.running = 0
        self.most_at_once = 0

    def __call__(self, event: dict, context: Any) -> dict:
        with self.lock:
            self.events.append(event)
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(0.2)
            if event["tile"]["tile_id"] in event.get("fail", []):
                raise TileFailed(f"tile {event['tile']['tile_id']} failed")
            tile_id = event["tile"]["tile_id"]
            return {"tile_id": tile_id, "key": f"jobs/{event['job_id']}/{tile_id}.tif"}
        finally:
            with self.lock:
                self.running -= 1


CALLS = TileCalls()
BATCH = LocalBatch()
PROCS, SPECS = BATCH.procs, BATCH.specs


@pytest.fixture(scope="module")
def moto_url():
    with seamed_moto_server(lambda info: CALLS, BATCH, region=REGION, kill_grace_s=1.0) as url:
        yield url


@pytest.fixture
def aws(moto_url, monkeypatch):
    return clients_of(moto_url, monkeypatch, region=REGION, config=FAST)


@pytest.fixture(scope="module")
def world(moto_url):
    """Bucket, role, the tile Lambda, and a Batch queue whose job writes its tile id and sleeps."""
    client = lambda service: boto3.client(service, region_name=REGION, endpoint_url=moto_url)  # noqa: E731
    client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = client("iam").create_role(RoleName="fanout-spike", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "# runs in-process through the seam\n")
    function = client("lambda").create_function(
        FunctionName="fanout-tile", Runtime="python3.11", Role=role, Handler="app.tile",
        Code={"ZipFile": code.getvalue()}, Timeout=30, MemorySize=256)["FunctionArn"]
    batch = client("batch")
    environment = batch.create_compute_environment(computeEnvironmentName="fanout-ce", type="UNMANAGED",
                                                   serviceRole=role)
    queue = batch.create_job_queue(jobQueueName="fanout-q", priority=1, state="ENABLED", computeEnvironmentOrder=[
        {"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}])
    tile_job = ("import os, sys, time; open(os.path.join(os.environ['OUT_DIR'], os.environ['TILE_ID']), 'w')"
                ".write(os.environ['WINDOW']); time.sleep(float(os.environ.get('SLEEP_S', '0'))); "
                "sys.exit(3 if os.environ['TILE_ID'] == os.environ.get('FAIL_TILE') else 0)")
    definition = batch.register_job_definition(
        jobDefinitionName="fanout-tile", type="container", containerProperties={
            "image": "stratus/processing:local", "command": ["python", "-c", tile_job],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}]})
    return {"role": role, "function": function, "queue": queue["jobQueueArn"], "jd": definition["jobDefinitionArn"]}


def manifest_items(s3, key: str, width: int = 9_000, height: int = 5_000) -> list[dict]:
    """The planner's tiles of a 12-date, 2-band job (3072 px tiles), written as the map's items."""
    plan = plan_run(GRAPH, GraphEstimate((LoadEstimate("load", "c", width, height, 12, 2),)))
    assert plan.shape is RunShape.FAN_OUT
    items = plan.manifest.map_items()
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(items).encode())
    return items


def distributed_map(processor_states: dict, start_at: str, *, max_concurrency: int,
                    tolerated: str | None = None, result_writer: bool = True,
                    prefix_path: str = "$$.Execution.Input.results_prefix") -> str:
    """The machine's definition as text: `tolerated` goes in verbatim (moto's parser is pickier than AWS's)."""
    state: dict[str, Any] = {
        "Type": "Map",
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                       "Parameters": {"Bucket": BUCKET, "Key.$": "$.manifest_key"}},
        "ItemSelector": {"job_id.$": "$.job_id", "fail.$": "$.fail", "tile.$": "$$.Map.Item.Value"},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": start_at, "States": processor_states},
        "MaxConcurrency": max_concurrency,
        "End": True,
    }
    if result_writer:
        state["ResultWriter"] = {"Resource": "arn:aws:states:::s3:putObject",
                                 "Parameters": {"Bucket": BUCKET, "Prefix.$": prefix_path}}
    text = json.dumps({"StartAt": "Tiles", "States": {"Tiles": state}})
    if tolerated is not None:
        text = text.replace('"MaxConcurrency"', f'"ToleratedFailurePercentage": {tolerated}, "MaxConcurrency"')
    return text


def lambda_tile(function: str) -> dict:
    return {"Tile": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                     "Parameters": {"FunctionName": function, "Payload.$": "$"}, "OutputPath": "$.Payload",
                     "End": True}}


def create_machine(sfn, definition: str, role: str) -> str:
    return sfn.create_state_machine(name=f"fanout-{uuid.uuid4().hex[:8]}", definition=definition,
                                    roleArn=role)["stateMachineArn"]


def start(sfn, machine: str, payload: dict) -> str:
    return sfn.start_execution(stateMachineArn=machine, name=f"e-{uuid.uuid4().hex}",
                               input=json.dumps(payload))["executionArn"]


def wait_done(sfn, execution: str, timeout_s: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError(f"execution still running after {timeout_s}s")


def map_run_of(sfn, execution: str) -> dict:
    (run,) = sfn.list_map_runs(executionArn=execution)["mapRuns"]
    return sfn.describe_map_run(mapRunArn=run["mapRunArn"])


def test_item_reader_runs_every_tile_once_within_max_concurrency_and_the_result_writer_writes_a_manifest(aws, world):
    s3, sfn = aws("s3"), aws("stepfunctions")
    items = manifest_items(s3, "jobs/j1/r1/tiles.json")
    assert len(items) == 6
    machine = create_machine(sfn, distributed_map(lambda_tile(world["function"]), "Tile", max_concurrency=2),
                             world["role"])
    CALLS.events.clear()
    CALLS.most_at_once = 0
    execution = start(sfn, machine, {"job_id": "j1", "fail": [], "manifest_key": "jobs/j1/r1/tiles.json",
                                     "results_prefix": "jobs/j1/r1/map"})
    done = wait_done(sfn, execution)

    assert done["status"] == "SUCCEEDED", done
    assert sorted(json.dumps(e["tile"], sort_keys=True) for e in CALLS.events) == sorted(
        json.dumps(i, sort_keys=True) for i in items)  # every item once, as written, with the selector's fields
    assert {e["job_id"] for e in CALLS.events} == {"j1"}
    assert CALLS.most_at_once == 2  # MaxConcurrency holds (and is reached: 6 items of 0.2 s)
    run = map_run_of(sfn, execution)
    assert run["status"] == "SUCCEEDED" and run["maxConcurrency"] == 2
    assert run["itemCounts"]["succeeded"] == 6 and run["itemCounts"]["failed"] == 0
    # With a ResultWriter the state's output is the pointer to the written results, as on AWS ...
    output = json.loads(done["output"])
    assert set(output) == {"MapRunArn", "ResultWriterDetails"}
    details = output["ResultWriterDetails"]
    assert details["Bucket"] == BUCKET and details["Key"].startswith("jobs/j1/r1/map/")
    assert details["Key"].endswith("/manifest.json")
    # ... but moto writes only the manifest, listing no result files (AWS writes SUCCEEDED_0.json, ...):
    # the tile outputs must not be read from the ResultWriter locally (seam or own tile records).
    written = json.loads(s3.get_object(Bucket=BUCKET, Key=details["Key"])["Body"].read())
    assert written["ResultFiles"] == {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="jobs/j1/r1/map/")["Contents"]
    assert [o["Key"] for o in listed] == [details["Key"]]


def test_tolerated_failure_percentage_is_parsed_but_not_applied(aws, world):
    """AWS fails the map run with States.ExceedToleratedFailureThreshold when more than the tolerated
    share of items fail (default 0 %); moto 5.2.5 logs "ToleratedFailurePercentage declarations currently
    have no effect" and succeeds, the failed item's result null."""
    s3, sfn = aws("s3"), aws("stepfunctions")
    items = manifest_items(s3, "jobs/j2/r1/tiles.json")
    failing = items[2]["tile_id"]
    machine = create_machine(sfn, distributed_map(lambda_tile(world["function"]), "Tile", max_concurrency=3,
                                                  tolerated="0.0", result_writer=False), world["role"])
    done = wait_done(sfn, start(sfn, machine, {"job_id": "j2", "fail": [failing],
                                               "manifest_key": "jobs/j2/r1/tiles.json"}))

    assert done["status"] == "SUCCEEDED", done  # AWS: FAILED, States.ExceedToleratedFailureThreshold
    results = json.loads(done["output"])
    assert results[2] is None and [r["tile_id"] for r in results if r] == [
        i["tile_id"] for i in items if i["tile_id"] != failing]
    run = map_run_of(sfn, done["executionArn"])
    assert run["itemCounts"]["failed"] == 1 and run["itemCounts"]["succeeded"] == 5
    assert run["toleratedFailurePercentage"] == 0.0


def test_result_writer_paths_are_read_from_the_map_results_not_the_state_input(aws, world):
    """moto resolves the ResultWriter's `Prefix.$` against the array of item results, so `$.field` of the
    state input fails with States.Runtime; a context-object path (`$$.Execution.Input...`, used above)
    or a literal prefix work."""
    s3, sfn = aws("s3"), aws("stepfunctions")
    manifest_items(s3, "jobs/j5/r1/tiles.json")
    machine = create_machine(sfn, distributed_map({"P": {"Type": "Pass", "End": True}}, "P", max_concurrency=2,
                                                  prefix_path="$.results_prefix"), world["role"])
    done = wait_done(sfn, start(sfn, machine, {"job_id": "j5", "fail": [], "manifest_key": "jobs/j5/r1/tiles.json",
                                               "results_prefix": "jobs/j5/r1/map"}))
    assert done["status"] == "FAILED" and done["error"] == "States.Runtime"
    assert "$.results_prefix" in done["cause"] and '"tile_id": "r0000c0000"' in done["cause"]


@pytest.mark.parametrize("percentage", ["0", "10", "100"])
def test_an_integer_tolerated_failure_percentage_is_refused_by_moto(aws, world, percentage):
    """AWS takes any number 0-100; moto's grammar wants a decimal literal (write 10.0, not 10)."""
    sfn = aws("stepfunctions")
    with pytest.raises(sfn.exceptions.ClientError, match="ASLParserException"):
        create_machine(sfn, distributed_map({"P": {"Type": "Pass", "End": True}}, "P", max_concurrency=2,
                                            tolerated=percentage), world["role"])
    create_machine(sfn, distributed_map({"P": {"Type": "Pass", "End": True}}, "P", max_concurrency=2,
                                        tolerated=f"{percentage}.0"), world["role"])


def batch_tile(world: dict, out_dir: str, sleep_s: float, fail_tile: str = "") -> dict:
    environment = [{"Name": "OUT_DIR", "Value": out_dir}, {"Name": "SLEEP_S", "Value": str(sleep_s)},
                   {"Name": "FAIL_TILE", "Value": fail_tile}, {"Name": "TILE_ID", "Value.$": "$.tile.tile_id"},
                   {"Name": "WINDOW", "Value.$": "States.JsonToString($.tile.window)"}]
    return {"Tile": {
        "Type": "Task", "Resource": "arn:aws:states:::batch:submitJob.sync",
        "Parameters": {"JobName.$": "States.Format('{}-{}', $.job_id, $.tile.tile_id)", "JobQueue": world["queue"],
                       "JobDefinition": world["jd"], "ContainerOverrides": {"Environment": environment}},
        "ResultSelector": {"tile_id.$": "$.JobName", "exit_code.$": "$.Container.ExitCode"},
        "End": True}}


def test_one_batch_job_per_tile_through_the_batch_seam(aws, world, tmp_path):
    s3, sfn, batch = aws("s3"), aws("stepfunctions"), aws("batch")
    items = manifest_items(s3, "jobs/j3/r1/tiles.json")
    machine = create_machine(sfn, distributed_map(batch_tile(world, str(tmp_path), 0.0, items[4]["tile_id"]), "Tile",
                                                  max_concurrency=3, result_writer=False), world["role"])
    done = wait_done(sfn, start(sfn, machine, {"job_id": "j3", "fail": [], "manifest_key": "jobs/j3/r1/tiles.json"}),
                     timeout_s=60)

    assert done["status"] == "SUCCEEDED", done
    results = json.loads(done["output"])
    assert results[4] is None  # the failed Batch job: a failed item (and, as above, no map failure)
    assert [r["tile_id"] for r in results if r] == [f"j3-{i['tile_id']}" for i in items if i is not items[4]]
    assert all(r["exit_code"] == 0 for r in results if r)
    assert {p.name: json.loads(p.read_text()) for p in tmp_path.iterdir()} == {
        i["tile_id"]: i["window"] for i in items}  # every tile's process got its own tile id and window
    jobs = {SPECS[job_id].job_name: job_id for job_id in SPECS}
    failed = batch.describe_jobs(jobs=[jobs[f"j3-{items[4]['tile_id']}"]])["jobs"][0]
    assert failed["status"] == "FAILED"


def test_stopping_the_execution_starts_no_further_tile_but_leaves_running_batch_jobs_running(aws, world, tmp_path):
    """On AWS, stopping the execution aborts the map run and Step Functions terminates the running
    `.sync` Batch jobs; moto stops launching items and marks the execution ABORTED, but the map run
    reads SUCCEEDED and the running jobs go on: cancel must terminate the run's tile jobs itself
    (as `JobService` does for the one job today, through the status queue)."""
    s3, sfn, batch = aws("s3"), aws("stepfunctions"), aws("batch")
    manifest_items(s3, "jobs/j4/r1/tiles.json")
    machine = create_machine(sfn, distributed_map(batch_tile(world, str(tmp_path), 3.0), "Tile", max_concurrency=2,
                                                  result_writer=False), world["role"])
    execution = start(sfn, machine, {"job_id": "j4", "fail": [], "manifest_key": "jobs/j4/r1/tiles.json"})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(list(tmp_path.iterdir())) < 2:
        time.sleep(0.05)
    assert len(list(tmp_path.iterdir())) == 2  # two tiles running (MaxConcurrency 2)
    sfn.stop_execution(executionArn=execution, error="Canceled", cause="the user canceled the job")

    assert wait_done(sfn, execution)["status"] == "ABORTED"
    running = [job_id for job_id, spec in SPECS.items() if spec.job_name.startswith("j4-")]
    assert len(running) == 2
    statuses = {job["status"] for job in batch.describe_jobs(jobs=running)["jobs"]}
    assert statuses == {"RUNNING"}  # AWS: terminated with the execution
    time.sleep(3.5)
    assert len(list(tmp_path.iterdir())) == 2  # no further tile started
    assert map_run_of(sfn, execution)["status"] == "SUCCEEDED"  # AWS: ABORTED
    for job_id in running:  # what cancel has to do itself locally
        batch.terminate_job(jobId=job_id, reason="canceled")
