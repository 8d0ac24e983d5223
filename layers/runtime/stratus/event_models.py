"""The status and log events as pydantic models (re-exported by `stratus.events`, which loads this on first use)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from stratus.domain.lifecycle import JobStatus
from stratus.events import LogLevel, utcnow


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
