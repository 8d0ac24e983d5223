"""The ASL file agrees with the resource specs both CDK and the local runtime fill it from, and with
the run contract between PrepareJob and the processing container."""

import json
import re

from stratus import resources
from stratus.run_contract import PREPARED_FIELDS, RUN_ENVIRONMENT
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
