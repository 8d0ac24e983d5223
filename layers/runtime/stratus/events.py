"""Status and log events: what travels on the status and log SQS queues.

Events carry ids and short texts only, never data: large things live in S3 and are referenced by key. The event
classes (`StatusEvent`, `LogEvent`) are pydantic models defined in `stratus.event_models` and loaded on first use
(`from stratus.events import StatusEvent` works as before): pydantic costs the API function ~0.1 s of its cold
start, and most requests send no event.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from enum import StrEnum, unique
from typing import TYPE_CHECKING, Any

from stratus.domain.lifecycle import JobStatus  # noqa: F401 (the status field's type; the lifecycle lives there)

if TYPE_CHECKING:
    from stratus.event_models import LogEvent, StatusEvent

_MODELS = ("StatusEvent", "LogEvent")


def __getattr__(name: str) -> Any:
    if name in _MODELS:
        from stratus import event_models

        return getattr(event_models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    from stratus.event_models import StatusEvent

    return StatusEvent.model_validate(json.loads(body))


def parse_log_event(body: str) -> LogEvent:
    from stratus.event_models import LogEvent

    return LogEvent.model_validate(json.loads(body))
