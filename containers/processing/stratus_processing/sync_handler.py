"""Lambda entry point for synchronous processing (`POST /result`), in the processing image.

It runs the same `run_job` as a Batch job, on a graph the API froze in S3, and answers with an
outcome instead of status events: the caller is waiting on the line.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from stratus import aws
from stratus.events import JobStatus, LogEvent, LogLevel, StatusEvent
from stratus.run_contract import RunConfig
from stratus.settings import Settings

from stratus_processing.io.cog import RasterReader
from stratus_processing.run_credentials import results_access
from stratus_processing.runner import EXIT_OK, run_job


class OutcomePublisher:
    """Stands in for the event queues: keeps the failure a synchronous caller must be told about."""

    def __init__(self) -> None:
        self.error_code: str | None = None
        self.reason: str | None = None

    def status(self, event: StatusEvent) -> None:
        if event.status is JobStatus.ERROR:
            self.reason = event.reason

    def log(self, event: LogEvent) -> None:
        if event.level is LogLevel.ERROR and event.code:
            self.error_code = event.code


@cache
def container_rasters() -> RasterReader:
    """One reader per warm container, not per request: its open COG handles serve the next requests (an open
    is a HEAD and a header GET per file; the pool bounds them and reopens after `io.cog.DATASET_MAX_AGE_S`)."""
    return RasterReader.from_environ()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = Settings.from_env()
    config = RunConfig.from_sync_event(event)
    outcome = OutcomePublisher()
    s3 = aws.client("s3")
    # the request's own folder through a session of the sync results role: one AssumeRole per request
    # (docs/operations.md §5: measured ~7 ms on moto, tens of ms on AWS, inside the warm /result target)
    exit_code = run_job(config, settings, s3=s3, publisher=outcome, rasters=container_rasters(),
                        results=results_access(settings, s3))
    if exit_code == EXIT_OK:
        return {"ok": True}
    return {"ok": False, "error": {"code": outcome.error_code or "Internal",
                                   "message": outcome.reason or "Synchronous processing failed."}}
