"""Status and log events: what travels on the status and log SQS queues.

Events carry ids and short texts only, never data: large things live in S3 and are referenced by key.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from enum import StrEnum, unique
from typing import Any

from pydantic import BaseModel, Field

from stratus.domain.lifecycle import JobStatus  # noqa: F401 (the status field's type; the lifecycle lives there)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def isoformat_z(value: datetime) -> str:
    """RFC 3339 with a `Z`, as openEO and STAC documents write UTC times."""
    return value.isoformat().replace("+00:00", "Z")


@unique
class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class StatusEvent(BaseModel):
    job_id: str
    run_id: str
    status: JobStatus
    time: datetime = Field(default_factory=utcnow)
    progress: float | None = None  # percent, 0-100
    reason: str | None = None  # why a job failed, for the job log and `GET /jobs/{id}`
    detail: str | None = None  # raw failure cause (e.g. the Batch job description), truncated when stored
    # openEO `usage` of the run ({"cpu": {"value": 1.2, "unit": "cpu-seconds"}, "memory": ..., "duration": ...}),
    # on the processing's last event (running at 100 %, or error); stored once per run, in any order
    usage: dict[str, Any] | None = None
    # why the job failed, as a code (stored in the job's `error_code`); the order-service input errors
    # (`stratus.domain.lifecycle.INPUT_ERROR_CODES`, e.g. "NoDataAvailable") make an order INVALID
    error_code: str | None = None


class LogEvent(BaseModel):
    job_id: str
    level: LogLevel = LogLevel.INFO
    message: str
    time: datetime = Field(default_factory=utcnow)
    path: list[dict[str, Any]] | None = None  # openEO log `path`: the node(s) the entry is about
    code: str | None = None
    data: Any = None  # e.g. a traceback; kept as one entry, never split into many


class EventPublisher:
    """Sends status and log events to their queues; one instance per process."""

    def __init__(self, sqs_client: Any, status_queue_url: str, log_queue_url: str) -> None:
        self._sqs = sqs_client
        self._status_queue_url = status_queue_url
        self._log_queue_url = log_queue_url

    def status(self, event: StatusEvent) -> None:
        self._sqs.send_message(QueueUrl=self._status_queue_url, MessageBody=event.model_dump_json(exclude_none=True))

    def log(self, event: LogEvent) -> None:
        self._sqs.send_message(QueueUrl=self._log_queue_url, MessageBody=event.model_dump_json(exclude_none=True))


def parse_status_event(body: str) -> StatusEvent:
    return StatusEvent.model_validate(json.loads(body))


def parse_log_event(body: str) -> LogEvent:
    return LogEvent.model_validate(json.loads(body))
