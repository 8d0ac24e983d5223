"""Batch jobs: creation, listing, starting a run, and the monotonic status lifecycle.

Implements the openEO API v1.2 `/jobs` operations (create_job, list_jobs, describe_job,
start_job, update_job, delete_job, stop_job, estimate_job). Pure domain code: storage and the workflow engine come in through the ports below.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from stratus import catalog_layout
from stratus.domain.estimate import (CostModel, DryRunCatalog, GraphEstimate, JobEstimate, estimate_graph,
                                     estimate_job)
from stratus.errors import (
    BadRequestException,
    BudgetInvalidException,
    EstimateComplexityException,
    JobLockedException,
    JobNotFoundException,
    NoDataForUpdateException,
    PaymentRequiredException,
)
from stratus.domain.logs import LogEntry, entry_from_event
from stratus.domain.processes import require_process_graph
from stratus.domain.lifecycle import ACTIVE, ENDED, STARTABLE, JobStatus, moves_from
from stratus import events as event_types  # its models load on first use
from stratus.events import LogLevel, utcnow
from stratus.observability import logger

if TYPE_CHECKING:  # the pydantic event models load when an event is made (`stratus.events`)
    from stratus.events import StatusEvent

START_FAILED_REASON = "The job could not be started; please try again."
# openEO `PATCH /jobs/{job_id}`: the job properties a client may change.
UPDATABLE = ("title", "description", "process", "plan", "budget", "log_level")

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
    error_code: str | None = None  # why the current run failed, as a code (input errors make an order INVALID)
    usage: dict[str, Any] | None = None  # openEO `usage` of the current run, once it ended
    costs: float | None = None  # of the current run, in `resources.BILLING_CURRENCY`, from `usage`
    # as given at creation (not in openEO's job schema; openeo-python-driver's name): kept and shown, not used
    job_options: dict[str, Any] | None = None
    created: datetime = field(default_factory=utcnow)
    updated: datetime = field(default_factory=utcnow)
    queued: datetime | None = None
    started: datetime | None = None
    finished: datetime | None = None


class JobRepository(Protocol):
    def add(self, job: Job) -> None: ...

    def get(self, job_id: str) -> Job | None: ...

    def list_for_user(self, user_id: str, limit: int, after: str | None) -> tuple[list[Job], str | None]:
        """The user's jobs, newest first, as a list shows them: without `process` and `job_options`."""
        ...

    def begin_run(self, job_id: str, run_id: str, ended: tuple[JobStatus, ...], now: datetime) -> bool:
        """In one conditional write: the job's new run `run_id`, `queued` now, if the job never ran (`created`
        without a run) or its status is in `ended`; False (nothing written) otherwise."""
        ...

    def apply_status(self, event: StatusEvent, allowed_from: list[JobStatus], now: datetime) -> bool:
        """Write the event's status if the job's run is `event.run_id` and its status is in `allowed_from`
        (its `usage` is left to `record_usage`)."""
        ...

    def record_usage(self, job_id: str, run_id: str, usage: dict[str, Any], costs: float | None) -> bool:
        """Store a run's usage (and costs) if `run_id` is the job's run and none is stored yet."""
        ...

    def update(self, job_id: str, changes: dict[str, Any], locked: tuple[JobStatus, ...], now: datetime) -> bool:
        """Set the given properties (None removes one) unless the job's status is in `locked`."""
        ...

    def delete(self, job_id: str) -> None: ...


class JobArtifacts(Protocol):
    """What runs of a job left behind: result files in S3 and log entries."""

    def delete_prefix(self, prefix: str, keep: Callable[[str], bool] | None = None) -> None: ...


class JobLogs(Protocol):
    def add(self, entry: LogEntry) -> None: ...

    def delete_for_job(self, job_id: str) -> None: ...


class WorkflowStarter(Protocol):
    def start(self, job_id: str, run_id: str) -> None: ...

    def stop(self, job_id: str, run_id: str) -> None:
        """Stop the run's execution and its processing; a run that already ended is left alone."""
        ...


class StatusEvents(Protocol):
    """The status queue (`stratus.events.EventPublisher`)."""

    def status(self, event: StatusEvent) -> None: ...


class JobService:
    def __init__(self, repository: JobRepository, workflow: WorkflowStarter, catalog: DryRunCatalog | None = None,
                 cost_model: CostModel | None = None, artifacts: JobArtifacts | None = None,
                 logs: JobLogs | None = None, events: StatusEvents | None = None) -> None:
        self._jobs = repository
        self._events = events
        self._workflow = workflow
        self._catalog = catalog
        self._cost_model = cost_model
        self._artifacts = artifacts
        self._logs = logs

    def create_job(self, user_id: str, body: dict[str, Any]) -> Job:
        """POST /jobs. Raises `ProcessGraphMissingException` without a process graph."""
        process = require_process_graph(body.get("process"))
        _check_budget(body.get("budget"))
        job_options = body.get("job_options")
        if job_options is not None and not isinstance(job_options, dict):
            raise BadRequestException(reason="`job_options` must be an object")
        job = Job(
            job_id=f"j-{uuid.uuid4().hex}",
            user_id=user_id,
            process=process,
            title=body.get("title"),
            description=body.get("description"),
            plan=body.get("plan"),
            budget=body.get("budget"),
            job_options=job_options or None,
        )
        self._jobs.add(job)
        if self._logs is not None:
            # a job's log starts with its creation, so `GET /jobs/{id}/logs` is never a blank page
            created = event_types.LogEvent(job_id=job.job_id, level=LogLevel.INFO, time=job.created,
                               message=f"Job created{f' ({job.title})' if job.title else ''}; start it to process.")
            self._logs.add(entry_from_event(created, delivery_id=f"{job.job_id}-created"))
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
        """POST /jobs/{job_id}/results. Returns False when the job is already queued or running.

        Raises `PaymentRequiredException` when the job's budget is below its estimated costs (checked
        here, not at creation: the estimate depends on the catalog at the time the job runs).
        """
        job = self.get_job(user_id, job_id)
        if job.budget is not None and job.status in STARTABLE and self._catalog is not None \
                and self._cost_model is not None:
            graph = self._graph_estimate(job)
            # an incomplete estimate is a lower bound: above the budget it refuses; below, the job starts (a
            # source we could not reach in time is not the user's fault), logged
            if estimate_job(graph, self._cost_model).costs > job.budget:
                raise PaymentRequiredException()
            if not graph.complete:
                logger.warning("job started without a complete budget check", extra={
                    "job_id": job_id, "unknown": [u.collection_id for u in graph.unknown]})
        run_id = uuid.uuid4().hex[:12]
        if not self._jobs.begin_run(job_id, run_id, ENDED, utcnow()):
            return False  # a run is pending (or another request just started one): that run stands
        try:
            self._workflow.start(job_id, run_id)
        except Exception:
            # the run must not hang in `queued`: it ended before it began (the outage itself propagates)
            failed = event_types.StatusEvent(job_id=job_id, run_id=run_id, status=JobStatus.ERROR,
                                             reason=START_FAILED_REASON)
            apply_status_event(self._jobs, failed)
            raise
        return True

    def update_job(self, user_id: str, job_id: str, body: dict[str, Any]) -> None:
        """PATCH /jobs/{job_id}. Raises `NoDataForUpdateException` for an empty body and
        `JobLockedException` while a run is queued or running."""
        if not any(key in body for key in UPDATABLE):
            raise NoDataForUpdateException()
        # `log_level` is accepted, not stored: every entry is kept and `GET .../logs?level=` filters.
        changes = {key: body[key] for key in UPDATABLE if key in body and key != "log_level"}
        if "process" in changes:
            require_process_graph(changes["process"])
        if "budget" in changes:
            _check_budget(changes["budget"])
        self.get_job(user_id, job_id)
        if not self._jobs.update(job_id, changes, ACTIVE, utcnow()):
            raise JobLockedException()

    def stop_job(self, user_id: str, job_id: str) -> bool:
        """DELETE /jobs/{job_id}/results. Cancels the current run; returns False when there was none.

        The job ends `canceled` (like finished/error, a terminal status: late events of the canceled
        run change nothing). A job that is `created` with a run id was started but not yet queued and is
        canceled too. Repeating the request is harmless.

        The end also travels through the status queue, like every other end, so the status consumer tells
        an order's customer. It is sent before the write: a request that fails half-way leaves an event
        the consumer applies (or finds applied), never a canceled job nobody hears of.
        """
        job = self.get_job(user_id, job_id)
        if job.run_id is None or job.status.is_terminal:
            return False
        event = event_types.StatusEvent(job_id=job_id, run_id=job.run_id, status=JobStatus.CANCELED,
                            reason="Canceled by the user.")
        if self._events is not None:
            self._events.status(event)
        canceled = apply_status_event(self._jobs, event)
        # Stop even when another request won the write: stopping a stopped run is a no-op.
        self._workflow.stop(job_id, job.run_id)
        if canceled:
            self.discard_run_outputs(job_id, job.run_id)
        return canceled

    def discard_run_outputs(self, job_id: str, run_id: str) -> None:
        discard_run_outputs(self._artifacts, job_id, run_id)

    def delete_job(self, user_id: str, job_id: str) -> None:
        """DELETE /jobs/{job_id}: cancels a run in progress, then removes results of all runs, the log
        entries and the job itself."""
        job = self.get_job(user_id, job_id)
        if job.run_id is not None and not job.status.is_terminal:
            self.stop_job(user_id, job_id)
        if self._artifacts is not None:
            self._artifacts.delete_prefix(catalog_layout.job_prefix(job_id))
        if self._logs is not None:
            self._logs.delete_for_job(job_id)
        self._jobs.delete(job_id)

    def estimate_job(self, user_id: str, job_id: str) -> JobEstimate:
        """GET /jobs/{job_id}/estimate, from a dry run over the catalog. Raises `EstimateComplexityException`
        (openEO's answer for "cannot be estimated reliably") when a collection's items could not be listed:
        an estimate without them would claim a size we don't know."""
        job = self.get_job(user_id, job_id)
        if self._cost_model is None:
            raise RuntimeError("JobService was built without a catalog and cost model")
        graph = self._graph_estimate(job)
        if not graph.complete:
            unknown = "; ".join(f"'{u.collection_id}' ({u.reason})" for u in graph.unknown)
            raise EstimateComplexityException(message=(
                f"The job cannot be estimated now: the items of {unknown} could not be listed from the "
                f"collection's source. Please try again later."))
        return estimate_job(graph, self._cost_model)

    def _graph_estimate(self, job: Job) -> GraphEstimate:
        if self._catalog is None:
            raise RuntimeError("JobService was built without a catalog and cost model")
        return estimate_graph(job.process.get("process_graph") or {}, self._catalog.collection,
                              self._catalog.items)


def discard_run_outputs(artifacts: JobArtifacts | None, job_id: str, run_id: str,
                        keep: Callable[[str], bool] | None = None) -> None:
    """What a canceled or failed run wrote: partial results nobody may download are deleted, not left
    until the bucket's expiry (but the keys `keep` names). Results of finished runs stay."""
    if artifacts is not None:
        if keep is None:
            artifacts.delete_prefix(catalog_layout.run_prefix(job_id, run_id))
        else:
            artifacts.delete_prefix(catalog_layout.run_prefix(job_id, run_id), keep=keep)


# DynamoDB numbers span 1e-130..1e125 with 38 digits; a budget is money, so far narrower bounds suffice.
MIN_BUDGET = 1e-9
MAX_BUDGET = 1e15


def _check_budget(budget: Any) -> None:
    """openEO `BudgetInvalid`: a budget must be a number above 0 (or null for no limit), stored as given."""
    if budget is None:
        return
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not MIN_BUDGET <= budget <= MAX_BUDGET:
        raise BudgetInvalidException()


def apply_status_event(repository: JobRepository, event: StatusEvent, cost_model: CostModel | None = None) -> bool:
    """Move a job forward; duplicates, stale runs and out-of-order events change nothing.

    The run's `usage` an event carries is stored apart from the status: it comes with the processing's
    last `running` event, which may arrive after the state machine's `finished`, and must not be lost
    then. The first usage of the job's current run wins; `costs` are derived from it with `cost_model`.

    Returns True when the event changed the job (its status or its usage).
    """
    if event.reason and len(event.reason) > MAX_REASON_CHARS:
        event = event.model_copy(update={"reason": event.reason[:MAX_REASON_CHARS]})
    allowed = moves_from(event.status)
    if not allowed:
        return False  # `created` follows nothing: an event that claims it is out of order
    applied = repository.apply_status(event, sorted(allowed, key=lambda s: s.rank), utcnow())
    if event.usage:
        costs = costs_of_usage(event.usage, cost_model) if cost_model is not None else None
        applied = repository.record_usage(event.job_id, event.run_id, event.usage, costs) or applied
    return applied


def costs_of_usage(usage: dict[str, Any], model: CostModel) -> float | None:
    """A run's costs: its wall time priced like the estimate prices it (`model.seconds_per_gb` of
    processing cost `model.cost_per_gb`), so a run as fast as estimated costs what was estimated
    (without the estimate's minimum duration). None without a duration in seconds."""
    duration = usage.get("duration") if isinstance(usage, dict) else None
    if not isinstance(duration, dict) or duration.get("unit") != "seconds":
        return None
    seconds = duration.get("value")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0 or model.seconds_per_gb <= 0:
        return None
    return round(seconds / model.seconds_per_gb * model.cost_per_gb, 4)


# What users read when the workflow (not their graph) failed; the raw cause goes to the operators' log only.
# AWS Batch's own status reasons are worded for users by their beginning; any other is not shown at all.
_BATCH_REASONS_FOR_USERS = {
    "Essential container in task exited": "Processing failed",
    "Host EC2": "Processing was interrupted: the machine running it was reclaimed; please start the job again",
    "Your Spot Task was interrupted": (
        "Processing was interrupted: the machine running it was reclaimed; please start the job again"),
    "OutOfMemoryError": "Processing ran out of memory",
}
_BATCH_TIMEOUT_REASON = "Job attempt duration exceeded timeout"
PREPARATION_FAILED_REASON = "The job could not be prepared for processing (an internal error); please try again."
TIMEOUT_REASON = "The job took longer than the {hours:g} hours a run may take and was stopped."


def describe_workflow_failure(error: str | None, cause: str | None, max_run_hours: float = 5.0) -> str:
    """A reason for users from a Step Functions Catch (`$.error.Error` / `$.error.Cause`): never the name of an
    internal exception, a stack trace or an AWS-internal message (the processing's own log entries say what
    went wrong in a user's graph)."""
    try:
        detail = json.loads(cause) if cause else {}
    except ValueError:
        detail = {}
    if not isinstance(detail, dict):
        detail = {}
    if "StatusReason" in detail or "Container" in detail:
        exit_code = (detail.get("Container") or {}).get("ExitCode")
        batch_reason = str(detail.get("StatusReason") or "")
        if batch_reason.startswith(_BATCH_TIMEOUT_REASON):
            return TIMEOUT_REASON.format(hours=max_run_hours)
        text = next((worded for start, worded in _BATCH_REASONS_FOR_USERS.items() if batch_reason.startswith(start)),
                    "Processing failed")
        return text + (f" (exit code {exit_code})" if exit_code is not None else "") + "; see the job's log."
    if error == "States.Timeout":
        return TIMEOUT_REASON.format(hours=max_run_hours)
    return PREPARATION_FAILED_REASON
