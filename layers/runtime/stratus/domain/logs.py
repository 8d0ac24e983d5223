"""Job logs: storing entries from log events and serving `GET /jobs/{job_id}/logs`."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from stratus.events import LogLevel, isoformat_z

if TYPE_CHECKING:
    from stratus.events import LogEvent

MAX_MESSAGE_CHARS = 4000
MAX_DATA_CHARS = 100_000  # a traceback fits; DynamoDB's 400 KB item limit is never approached

_LEVEL_ORDER = {level: i for i, level in enumerate(LogLevel)}


@dataclass
class LogEntry:
    job_id: str
    log_id: str
    level: str
    message: str
    time: datetime
    code: str | None = None
    path: list[dict[str, Any]] | None = None
    data: Any = None

    def to_openeo(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": self.log_id, "level": self.level, "message": self.message,
                                 "time": isoformat_z(self.time)}
        if self.code:
            entry["code"] = self.code
        if self.path:
            entry["path"] = self.path
        if self.data is not None:
            entry["data"] = self.data
        return entry


class LogRepository(Protocol):
    def add(self, entry: LogEntry) -> None: ...

    def list(self, job_id: str, after: str | None, limit: int, levels: Sequence[str] | None = None
             ) -> list[LogEntry]:
        """Up to `limit` entries after `after`, of `levels` only when given (filtered before the page is cut,
        so a page of a long log holds `limit` entries of those levels, not fewer)."""


def entry_from_event(event: LogEvent, delivery_id: str) -> LogEntry:
    """The id sorts by time and is derived from the delivery, so a redelivered event is stored once."""
    fingerprint = hashlib.sha256(delivery_id.encode()).hexdigest()[:10]
    data = event.data
    if isinstance(data, str) and len(data) > MAX_DATA_CHARS:
        data = data[:MAX_DATA_CHARS]
    return LogEntry(
        job_id=event.job_id,
        log_id=f"{event.time.strftime('%Y%m%dT%H%M%S.%f')}-{fingerprint}",
        level=event.level.value,
        message=event.message[:MAX_MESSAGE_CHARS],
        time=event.time,
        code=event.code,
        path=event.path,
        data=data,
    )


def levels_at_least(min_level: str | None) -> list[str] | None:
    """openEO `level`: the minimum severity to return, as the levels to return (None: all)."""
    if not min_level:
        return None
    threshold = _LEVEL_ORDER[LogLevel(min_level)]
    return [level.value for level, order in _LEVEL_ORDER.items() if order >= threshold]
