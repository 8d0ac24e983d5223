"""`WorkflowStarter` on Step Functions: one execution per job run."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from stratus.domain.reaper import RunState

BATCH_FINAL_STATES = ("SUCCEEDED", "FAILED")
BATCH_ACTIVE_STATES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
# The job state machine's Catch target (its input holds the failure at `$.error`) and its final Fail state's error.
CATCH_STATE = "MarkError"
FAILED_STATE_ERROR = "JobFailed"


def execution_name(job_id: str, run_id: str) -> str:
    """Deterministic, so a retried start meets `ExecutionAlreadyExists` instead of a second run."""
    return f"{job_id}-{run_id}"


def batch_job_name(job_id: str, run_id: str) -> str:
    """The name the state machine submits the run's Batch job under (see `start`)."""
    return f"stratus-{job_id}-{run_id}"


def execution_arn(state_machine_arn: str, name: str) -> str:
    """arn:aws:states:<region>:<account>:stateMachine:<sm> -> ...:execution:<sm>:<name>"""
    prefix, _, machine = state_machine_arn.rpartition(":stateMachine:")
    return f"{prefix}:execution:{machine}:{name}"


class StepFunctionsWorkflow:
    """Starts and stops runs.

    Stopping: `StopExecution` on the run's execution; on AWS the `batch:submitJob.sync` task then
    terminates its Batch job itself. The emulator (moto) does not, so `stop` also terminates the
    run's Batch job explicitly (harmless on AWS: terminating an ended job is a no-op). The job is
    found by its deterministic name (`batch_job_name`) with `ListJobs` on the queue the state machine
    submits to, read once from the state machine's definition (no extra setting to keep in sync).
    """

    def __init__(self, sfn_client: Any, state_machine_arn: str, batch_client: Any = None) -> None:
        self._sfn = sfn_client
        self._arn = state_machine_arn
        self._batch = batch_client
        self._job_queue: str | None = None

    def start(self, job_id: str, run_id: str) -> None:
        payload = {"job_id": job_id, "run_id": run_id, "batch_job_name": batch_job_name(job_id, run_id)}
        try:
            self._sfn.start_execution(stateMachineArn=self._arn, name=execution_name(job_id, run_id),
                                      input=json.dumps(payload))
        except self._sfn.exceptions.ExecutionAlreadyExists:
            pass

    def stop(self, job_id: str, run_id: str) -> None:
        arn = execution_arn(self._arn, execution_name(job_id, run_id))
        try:
            self._sfn.stop_execution(executionArn=arn, cause="Canceled by the user")
        except self._sfn.exceptions.ExecutionDoesNotExist:
            pass  # the start never got through
        if self._batch is not None:
            self._terminate_batch_jobs(batch_job_name(job_id, run_id))

    def state(self, job_id: str, run_id: str) -> RunState:
        """The run's execution status and, while it runs, its Batch job's status (for the reaper)."""
        arn = execution_arn(self._arn, execution_name(job_id, run_id))
        try:
            described = self._sfn.describe_execution(executionArn=arn)
        except self._sfn.exceptions.ExecutionDoesNotExist:
            return RunState(execution=None)
        execution = described["status"]
        if execution == "FAILED":
            error, cause = self._caught_failure(arn) or (described.get("error"), described.get("cause"))
            if error == FAILED_STATE_ERROR:
                error = cause = None  # the Fail state's words: the failure itself was not found
            return RunState(execution=execution, error=error, cause=cause)
        if execution != "RUNNING" or self._batch is None or not self._queue():
            return RunState(execution=execution)
        jobs = self._run_jobs(batch_job_name(job_id, run_id))
        if not jobs:
            return RunState(execution=execution)
        # one task, or the tiles of a fan-out: waiting for capacity while none of them runs is what the
        # reaper looks for; a run with a job past RUNNABLE is alive
        active = [j for j in jobs if j.get("status") in BATCH_ACTIVE_STATES] or jobs
        started = [j for j in active if j.get("status") not in ("SUBMITTED", "PENDING", "RUNNABLE")]
        latest = max(started or active, key=lambda j: j.get("createdAt") or 0)
        since = latest.get("createdAt")
        return RunState(execution=execution, batch_status=latest.get("status"),
                        batch_since=datetime.fromtimestamp(since / 1000, timezone.utc) if since else None)

    def _caught_failure(self, arn: str) -> tuple[str | None, str | None] | None:
        """The failure the state machine's Catch passed on (the input of its `CATCH_STATE`): the
        execution's own error only names the final Fail state."""
        history = self._sfn.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=50,
                                                  includeExecutionData=True)
        for event in history.get("events", []):
            entered = event.get("stateEnteredEventDetails") or {}
            if event.get("type") == "TaskStateEntered" and entered.get("name") == CATCH_STATE:
                try:
                    caught = json.loads(entered.get("input") or "{}").get("error") or {}
                except (ValueError, AttributeError):
                    return None
                return caught.get("Error"), caught.get("Cause")
        return None

    def _terminate_batch_jobs(self, name: str) -> None:
        """The run's Batch jobs: its one task, or its tiles and combine task (named `{name}-...`)."""
        for summary in self._run_jobs(name):
            if summary.get("status") not in BATCH_FINAL_STATES:
                self._batch.terminate_job(jobId=summary["jobId"], reason="Canceled by the user")

    def _run_jobs(self, name: str) -> list[dict[str, Any]]:
        """The Batch jobs of a run: named `name` or `name-<tile id>` / `name-combine` (ListJobs matches a
        name prefix ending in `*`; run ids have one length, so no other run's names share the prefix)."""
        queue = self._queue()
        if not queue:
            return []
        found, token = [], None
        while True:
            page = self._batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [f"{name}*"]}],
                                         **({"nextToken": token} if token else {}))
            found += [j for j in page.get("jobSummaryList", [])
                      if j.get("jobName") == name or str(j.get("jobName", "")).startswith(f"{name}-")]
            token = page.get("nextToken")
            if not token:
                return found

    def _queue(self) -> str | None:
        if self._job_queue is None:
            definition = json.loads(self._sfn.describe_state_machine(stateMachineArn=self._arn)["definition"])
            self._job_queue = next(
                (state["Parameters"]["JobQueue"] for state in definition.get("States", {}).values()
                 if str(state.get("Resource", "")).startswith("arn:aws:states:::batch:submitJob")
                 and "JobQueue" in (state.get("Parameters") or {})), "")
        return self._job_queue
