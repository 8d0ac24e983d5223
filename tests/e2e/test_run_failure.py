"""What the reaper learns of a failed run from the workflow (Step Functions in the local system's emulator):
the failure the state machine's Catch saw, not only that the execution failed."""

from __future__ import annotations

import time

import boto3
import pytest

from stratus.adapters.workflow import StepFunctionsWorkflow
from stratus.domain.jobs import describe_workflow_failure
from tests.e2e.test_openeo_client_job import BBOX, JUNE, wait_for

pytestmark = pytest.mark.e2e


def _aws(local_system, service: str):
    return boto3.client(service, endpoint_url=local_system.endpoint_url, region_name="eu-central-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_a_failed_runs_state_carries_the_caught_failure(local_system, connection):
    # Given a job that fails in its processing
    cube = connection.load_collection("no-such-collection", spatial_extent=BBOX, temporal_extent=JUNE,
                                      bands=["B04"], fetch_metadata=False)
    job = cube.save_result("GTiff").create_job(title="fails")
    job.start()
    assert wait_for(job)[0] == "error"
    sfn = _aws(local_system, "stepfunctions")
    [machine] = sfn.list_state_machines()["stateMachines"]
    [execution] = [e for e in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
                   if e["name"].startswith(f"{job.job_id}-")]
    run_id = execution["name"].removeprefix(f"{job.job_id}-")
    workflow = StepFunctionsWorkflow(sfn, machine["stateMachineArn"], _aws(local_system, "batch"))
    # When the reaper's view of the run is asked for, once its execution ended
    deadline = time.monotonic() + 20
    while (state := workflow.state(job.job_id, run_id)).execution == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.25)
    # Then it is the Batch job's failure as the Catch saw it, which reads neutrally for users
    assert state.execution == "FAILED" and state.error == "States.TaskFailed", state
    assert "StatusReason" in (state.cause or ""), state
    assert describe_workflow_failure(state.error, state.cause).startswith("Processing failed")
