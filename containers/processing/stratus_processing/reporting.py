"""How the engine tells the outside world what it is doing: log entries and progress.

Processes and the evaluator only see the `Reporter` protocol; the runner plugs in one that sends
SQS events, tests plug in one that records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from stratus.events import LogLevel


class Reporter(Protocol):
    def log(self, message: str, *, level: LogLevel = LogLevel.INFO,
            path: list[dict[str, Any]] | None = None, data: Any = None, code: str | None = None) -> None:
        """A job log entry (openEO `GET /jobs/{id}/logs`)."""

    def progress(self, fraction: float) -> None:
        """Share of the process graph evaluated so far, 0.0 to 1.0."""


class NullReporter:
    def log(self, message: str, *, level: LogLevel = LogLevel.INFO,
            path: list[dict[str, Any]] | None = None, data: Any = None, code: str | None = None) -> None:
        pass

    def progress(self, fraction: float) -> None:
        pass


@dataclass
class RecordingReporter:
    """Keeps everything reported, for tests and for debugging a graph locally."""

    logs: list[dict[str, Any]] = field(default_factory=list)
    fractions: list[float] = field(default_factory=list)

    def log(self, message: str, *, level: LogLevel = LogLevel.INFO,
            path: list[dict[str, Any]] | None = None, data: Any = None, code: str | None = None) -> None:
        self.logs.append({"message": message, "level": level, "path": path, "data": data, "code": code})

    def progress(self, fraction: float) -> None:
        self.fractions.append(fraction)
