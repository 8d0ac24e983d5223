"""The ASL file agrees with the resource specs both CDK and the local runtime fill it from, and with
the run contract between PrepareJob and the processing container."""

import json
import re

from stratus import resources
from stratus.run_contract import (
    PREPARED_FIELDS,
    PREVIOUS_RESULTS_PREFIX_ENV,
    RUN_ENVIRONMENT,
    RUN_STEP_COMBINE,
    RUN_STEP_ENV,
    RUN_STEP_TILE,
    TILE_ID_ENV,
)
from tests.support import REPO_ROOT


def definition():
    return json.loads((REPO_ROOT / resources.STATE_MACHINE_FILE).read_text())


def test_substitutions_are_exactly_the_declared_ones():
    text = (REPO_ROOT / resources.STATE_MACHINE_FILE).read_text()
    assert set(re.findall(r"\$\{(\w+)\}", text)) == set(resources.STATE_MACHINE_SUBSTITUTIONS)


def test_every_task_failure_ends_in_mark_error():
    states = definition()["States"]
    for name, state in states.items():
        if state["Type"] == "Task" and name != "MarkError":
            assert any(c["Next"] == "MarkError" for c in state.get("Catch", [])), name


def test_timeouts_leave_room_for_the_processing_limit():
    asl = definition()
    run = asl["States"]["RunProcessing"]
    assert run["Resource"] == "arn:aws:states:::batch:submitJob.sync"
    assert run["TimeoutSeconds"] > resources.PROCESSING_TIMEOUT_S
    assert asl["TimeoutSeconds"] > run["TimeoutSeconds"]


def test_payloads_carry_pointers_only():
    """Inputs of the processing are ids and S3 keys, never inline data: exactly the contract's run
    environment, each from the execution input (ids) or from what PrepareJob returned (keys)."""
    states = definition()["States"]
    env = states["RunProcessing"]["Parameters"]["ContainerOverrides"]["Environment"]
    assert sorted(e["Name"] for e in env) == sorted(RUN_ENVIRONMENT.values())
    field_of = {name: field for field, name in RUN_ENVIRONMENT.items()}
    for entry in env:
        field = field_of[entry["Name"]]
        assert entry["Value.$"] == (f"$.prepared.{field}" if field in PREPARED_FIELDS else f"$.{field}")
    prepare = states["PrepareJob"]
    assert prepare["ResultPath"] == "$.prepared"
    assert prepare["ResultSelector"] == {f"{field}.$": f"$.Payload.{field}" for field in PREPARED_FIELDS}
    assert prepare["Parameters"]["Payload"] == {"job_id.$": "$.job_id", "run_id.$": "$.run_id"}


# --- the fan-out path ---------------------------------------------------------------------------------------------

def batch_states(asl):
    """Every Batch task of the machine, the Distributed Map's child task included: name -> state."""
    found = {}
    for name, state in asl["States"].items():
        if state.get("Resource") == "arn:aws:states:::batch:submitJob.sync":
            found[name] = state
        for child, inner in state.get("ItemProcessor", {}).get("States", {}).items():
            if inner.get("Resource") == "arn:aws:states:::batch:submitJob.sync":
                found[child] = inner
    return found


def test_every_batch_task_gets_the_run_environment_and_its_step():
    asl = definition()
    tasks = batch_states(asl)
    assert set(tasks) == {"RunProcessing", "RunBigTask", "RunTile", "Combine"}
    steps = {"RunProcessing": {}, "RunBigTask": {},
             "RunTile": {RUN_STEP_ENV: {"Value": RUN_STEP_TILE}, TILE_ID_ENV: {"Value.$": "$.tile.tile_id"}},
             "Combine": {RUN_STEP_ENV: {"Value": RUN_STEP_COMBINE},
                         PREVIOUS_RESULTS_PREFIX_ENV: {"Value.$": "$.plan.previous_results_prefix"}}}
    field_of = {name: field for field, name in RUN_ENVIRONMENT.items()}
    for name, state in tasks.items():
        env = {e["Name"]: {k: v for k, v in e.items() if k != "Name"}
               for e in state["Parameters"]["ContainerOverrides"]["Environment"]}
        assert set(env) == set(RUN_ENVIRONMENT.values()) | set(steps[name]), name
        for variable, field in field_of.items():
            # the map's items carry the execution input's ids and PrepareJob's pointers under the same paths
            assert env[variable] == {"Value.$": f"$.prepared.{field}" if field in PREPARED_FIELDS else f"$.{field}"}
        for variable, value in steps[name].items():
            assert env[variable] == value, (name, variable)
        assert state["TimeoutSeconds"] > resources.PROCESSING_TIMEOUT_S


def test_the_plan_chooses_the_path_and_the_map_passes_what_its_tile_tasks_read():
    states = definition()["States"]
    assert states["MarkQueued"]["Next"] == "PlanRun" and states["PlanRun"]["Next"] == "RunShape"
    plan = states["PlanRun"]
    assert plan["Parameters"]["Payload"] == {"job_id.$": "$.job_id", "run_id.$": "$.run_id",
                                             "graph_key.$": "$.prepared.graph_key",
                                             "results_prefix.$": "$.prepared.results_prefix"}
    assert plan["ResultPath"] == "$.plan"
    choices = {c["Next"]: c for c in states["RunShape"]["Choices"]}
    assert choices["Tiles"] == {"Variable": "$.plan.shape", "StringEquals": "fan_out", "Next": "Tiles"}
    assert states["RunShape"]["Default"] == "RunProcessing"
    assert "ResourceRequirements" not in states["RunProcessing"]["Parameters"]["ContainerOverrides"]
    assert states["RunBigTask"]["Parameters"]["ContainerOverrides"]["ResourceRequirements"] == [
        {"Type": "VCPU", "Value.$": "$.plan.vcpu"}, {"Type": "MEMORY", "Value.$": "$.plan.memory"}]
    tiles = states["Tiles"]
    assert tiles["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert tiles["ItemReader"]["Parameters"] == {"Bucket.$": "$.plan.bucket", "Key.$": "$.plan.tiles_key"}
    selector = tiles["ItemSelector"]
    assert selector["tile.$"] == "$$.Map.Item.Value"
    assert {selector[f"{k}.$"] for k in ("job_id", "run_id", "prepared", "plan", "batch_job_name")} == {
        "$.job_id", "$.run_id", "$.prepared", "$.plan", "$.batch_job_name"}
    # a failed map still combines what finished (partial results); the combine's own failure is the job's error
    assert tiles["Next"] == "Combine" and [c["Next"] for c in tiles["Catch"]] == ["Combine"]
    assert tiles["ResultPath"] is None  # 10,000 results would not fit a state's payload
    assert states["Combine"]["Next"] == "MarkFinished"


def test_the_fanout_policy_is_written_into_the_deployed_definition():
    text = (REPO_ROOT / resources.STATE_MACHINE_FILE).read_text()
    deployed = resources.state_machine_definition(text)
    tiles = json.loads(deployed)["States"]["Tiles"]
    policy = resources.FANOUT_POLICY
    assert tiles["MaxConcurrency"] == policy.max_concurrency
    assert tiles["TimeoutSeconds"] == policy.map_timeout_s
    # a decimal in the text: moto's ASL parser refuses an integer ToleratedFailurePercentage
    assert re.search(r'"ToleratedFailurePercentage": \d+\.\d+', deployed)
    assert json.loads(deployed)["TimeoutSeconds"] > policy.map_timeout_s + definition()["States"]["Combine"][
        "TimeoutSeconds"]
