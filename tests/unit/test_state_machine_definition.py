"""The ASL file agrees with the resource specs both CDK and the local runtime fill it from."""

import json
import re

from stratus import resources
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
    """Inputs of the processing are ids and S3 keys, never inline data."""
    env = definition()["States"]["RunProcessing"]["Parameters"]["ContainerOverrides"]["Environment"]
    assert {e["Name"] for e in env} == {"STRATUS_JOB_ID", "STRATUS_RUN_ID", "STRATUS_GRAPH_KEY",
                                         "STRATUS_RESULTS_PREFIX"}
