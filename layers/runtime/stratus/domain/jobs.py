"""Batch jobs: creation, listing, starting a run, and the monotonic status lifecycle.

Implements the openEO API v1.2 `/jobs` operations (create_job, list_jobs, describe_job,
start_job). Pure domain code: storage and the workflow engine come in through the ports below.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from stratus.errors import JobNotFoundException, ProcessGraphMissingException
from stratus.events import JobStatus, StatusEvent, utcnow

# Runs may start from these; a queued or running job is left alone (openEO: 202, nothing changes).
STARTABLE = (JobStatus.CREATED, JobStatus.FINISHED, JobStatus.ERROR, JobStatus.CANCELED)

MAX_REASON_CHARS = 2000  # DynamoDB items are capped at 400 KB; a reason is for humans, not a dump


@dataclass
class Job:
    job_id: str
    user_id: str
    process: dict[str, Any]
    status: JobStatus = JobStatus.CREATED
    run_id: str | None = None
    title: str | None = None
    description: str | None = None
    plan: str | None = None
    budget: float | None = None
    progress: float | None = None
    reason: str | None = None
    usage: dict[str, Any] | None = None
    created: datetime = field(default_factory=utcnow)
    updated: datetime = field(default_factory=utcnow)
    queued: datetime | None = None
    started: datetime | None = None
    finished: datetime | None = None


class JobRepository(Protocol):
    def add(self, job: Job) -> None: ...

    def get(self, job_id: str) -> Job | None: ...

    def list_for_user(self, user_id: str, limit: int, after: str | None) -> tuple[list[Job], str | None]: ...

    def begin_run(self, job_id: str, run_id: str, allowed_from: tuple[JobStatus, ...], now: datetime) -> bool:
        """Reset the job to `created` under a new run id if its status is in `allowed_from`."""
        ...

    def apply_status(self, event: StatusEvent, allowed_from: list[JobStatus], now: datetime) -> bool:
        """Write the event's status if the job's run is `event.run_id` and its status is in `allowed_from`."""
        ...


class WorkflowStarter(Protocol):
    def start(self, job_id: str, run_id: str) -> None: ...


class JobService:
    def __init__(self, repository: JobRepository, workflow: WorkflowStarter) -> None:
        self._jobs = repository
        self._workflow = workflow

    def create_job(self, user_id: str, body: dict[str, Any]) -> Job:
        """POST /jobs. Raises `ProcessGraphMissingException` without a process graph."""
        process = body.get("process")
        if not isinstance(process, dict) or not isinstance(process.get("process_graph"), dict) \
                or not process["process_graph"]:
            raise ProcessGraphMissingException()
        job = Job(
            job_id=f"j-{uuid.uuid4().hex}",
            user_id=user_id,
            process=process,
            title=body.get("title"),
            description=body.get("description"),
            plan=body.get("plan"),
            budget=body.get("budget"),
        )
        self._jobs.add(job)
        return job

    def get_job(self, user_id: str, job_id: str) -> Job:
        """GET /jobs/{job_id}. Another user's job is reported as missing, not as forbidden."""
        job = self._jobs.get(job_id)
        if job is None or job.user_id != user_id:
            raise JobNotFoundException(identifier=job_id)
        return job

    def list_jobs(self, user_id: str, limit: int = 100, after: str | None = None) -> tuple[list[Job], str | None]:
        return self._jobs.list_for_user(user_id, limit, after)

    def start_job(self, user_id: str, job_id: str) -> bool:
        """POST /jobs/{job_id}/results. Returns False when the job is already queued or running."""
        self.get_job(user_id, job_id)
        run_id = uuid.uuid4().hex[:12]
        if not self._jobs.begin_run(job_id, run_id, STARTABLE, utcnow()):
            return False
        self._workflow.start(job_id, run_id)
        return True


def apply_status_event(repository: JobRepository, event: StatusEvent) -> bool:
    """Move a job forward; duplicates, stale runs and out-of-order events change nothing.

    Returns True when the event was applied.
    """
    if event.reason and len(event.reason) > MAX_REASON_CHARS:
        event = event.model_copy(update={"reason": event.reason[:MAX_REASON_CHARS]})
    allowed = event.status.earlier()
    if event.status is JobStatus.RUNNING:
        # progress updates arrive as repeated `running` events
        allowed = [*allowed, JobStatus.RUNNING]
    return repository.apply_status(event, allowed, utcnow())


def describe_workflow_failure(error: str | None, cause: str | None) -> str:
    """A readable reason from a Step Functions Catch (`$.error.Error` / `$.error.Cause`)."""
    try:
        detail = json.loads(cause) if cause else {}
    except ValueError:
        detail = {}
    if not isinstance(detail, dict):
        detail = {}
    if "StatusReason" in detail or "Container" in detail:
        exit_code = (detail.get("Container") or {}).get("ExitCode")
        reason = detail.get("StatusReason") or "the processing job failed"
        return f"Processing failed: {reason}" + (f" (exit code {exit_code})" if exit_code is not None else "")
    if "errorMessage" in detail:
        return f"{detail.get('errorType', 'Error')}: {detail['errorMessage']}"
    return f"Workflow failed: {error or 'unknown error'}" + (f": {cause[:500]}" if cause and not detail else "")
