"""Applying one status event (what the status consumer does with each record of the status queue).

A failure from the state machine's Catch (or the reaper, shaped alike) is worded for users; the event is
applied monotonically with the run's usage and costs (`apply_status_event`); the failure of the job's
current run is written to its log; an error or canceled run's partial files are deleted (a fanned-out run
keeps its finished tiles until a later run finishes); and when the
event is an end, the order's customer is told (also after a not-applied duplicate: a notice that failed
to send is retried with the record).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from stratus import catalog_layout
from stratus.domain.estimate import CostModel
from stratus.domain.jobs import (
    JobArtifacts,
    JobLogs,
    JobRepository,
    apply_status_event,
    describe_workflow_failure,
    discard_run_outputs,
)
from stratus.domain.lifecycle import DISCARDS_OUTPUTS, ENDED, JobStatus
from stratus.domain.logs import entry_from_event
from stratus.domain.run_planning import RunDocuments, is_fanned_out, kept_after_error, superseded_runs
from stratus.events import LogEvent, LogLevel, StatusEvent

MAX_CAUSE_CHARS = 4000  # of the raw cause kept for the operators' log


class OrderNotices(Protocol):
    """`stratus.domain.notifications.OrderNotifier`."""

    def notify_if_ended(self, order_id: str) -> str | None: ...


@dataclass(frozen=True)
class WorkflowFailure:
    """The raw failure of a workflow (for operators, never for users)."""

    error: str | None
    cause: str


@dataclass(frozen=True)
class StatusOutcome:
    event: StatusEvent  # as applied: a workflow failure's reason worded for users
    applied: bool  # the job changed (its status or its usage)
    workflow_failure: WorkflowFailure | None = None
    told: str | None = None  # the order status a notice went out for


class StatusService:
    def __init__(self, jobs: JobRepository, logs: JobLogs, artifacts: JobArtifacts | None = None,
                 notices: OrderNotices | None = None, cost_model: CostModel | None = None,
                 documents: RunDocuments | None = None) -> None:
        self._documents = documents
        self._jobs = jobs
        self._logs = logs
        self._artifacts = artifacts
        self._notices = notices
        self._cost_model = cost_model

    def apply(self, event: StatusEvent) -> StatusOutcome:
        failure = None
        if event.status is JobStatus.ERROR and event.detail is not None:
            # the state machine's Catch: users read a reason, operators the raw cause (in the outcome)
            failure = WorkflowFailure(event.reason, event.detail[:MAX_CAUSE_CHARS])
            event = event.model_copy(update={"reason": describe_workflow_failure(event.reason, event.detail),
                                             "detail": None})
        applied = apply_status_event(self._jobs, event, self._cost_model)
        if applied and failure is not None:
            # only the job's current run speaks to its owner: a stale or repeated failure says nothing
            log = LogEvent(job_id=event.job_id, level=LogLevel.ERROR, message=event.reason, time=event.time)
            self._logs.add(entry_from_event(log, delivery_id=f"{event.job_id}-{event.run_id}-workflow-failure"))
        if applied and event.status in DISCARDS_OUTPUTS:
            self._discard(event)
        if applied and event.status is JobStatus.FINISHED and self._documents is not None:
            self._drop_superseded_tiles(event.job_id, event.run_id)
        told = None
        if event.status in ENDED and self._notices is not None:
            told = self._notices.notify_if_ended(event.job_id)
        return StatusOutcome(event, applied, failure, told)

    def _discard(self, event: StatusEvent) -> None:
        """A failed fan-out run keeps its finished tiles: they are its partial results and what a restart
        reuses (deleted when a later run finishes or the job is deleted)."""
        keep = None
        if event.status is JobStatus.ERROR and self._documents is not None \
                and is_fanned_out(self._documents, event.job_id, event.run_id):
            keep = kept_after_error(event.job_id, event.run_id)
        discard_run_outputs(self._artifacts, event.job_id, event.run_id, keep=keep)

    def _drop_superseded_tiles(self, job_id: str, run_id: str) -> None:
        manifest = self._documents.read_document(
            catalog_layout.manifest_key(catalog_layout.results_prefix(job_id, run_id)))
        assets = (manifest or {}).get("assets") if isinstance(manifest, dict) else None
        keys = [a.get("key", "") for a in assets.values() if isinstance(a, dict)] if isinstance(assets, dict) else []
        for other in superseded_runs(self._documents, job_id, run_id, keys):
            discard_run_outputs(self._artifacts, job_id, other)
