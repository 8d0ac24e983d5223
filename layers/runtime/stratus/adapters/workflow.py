"""`WorkflowStarter` on Step Functions: one execution per job run."""

from __future__ import annotations

import json
from typing import Any


def execution_name(job_id: str, run_id: str) -> str:
    """Deterministic, so a retried start meets `ExecutionAlreadyExists` instead of a second run."""
    return f"{job_id}-{run_id}"


class StepFunctionsWorkflow:
    def __init__(self, sfn_client: Any, state_machine_arn: str) -> None:
        self._sfn = sfn_client
        self._arn = state_machine_arn

    def start(self, job_id: str, run_id: str) -> None:
        payload = {"job_id": job_id, "run_id": run_id, "batch_job_name": f"stratus-{job_id}-{run_id}"}
        try:
            self._sfn.start_execution(stateMachineArn=self._arn, name=execution_name(job_id, run_id),
                                      input=json.dumps(payload))
        except self._sfn.exceptions.ExecutionAlreadyExists:
            pass
