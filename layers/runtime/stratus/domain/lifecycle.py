"""The job lifecycle in one place: the statuses, the transitions a status event may make, the groups of
statuses the rest of the code asks about, and how an order reads a job's status.

    created ──start──▶ queued ──▶ running ──▶ finished | error | canceled
       │                 └──────────────────────▲    (ended: a new start begins a new run)
       └── (started, not yet queued) ───────────┘

Every status event names its run; only events of the job's current run apply, and only forward (by
rank), so duplicates, late and out-of-order events change nothing. `running` may repeat (progress
reports), but a reported progress never goes down. The order service's statuses are a view of these.
"""

from __future__ import annotations

from enum import StrEnum, unique
from types import MappingProxyType


@unique
class JobStatus(StrEnum):
    CREATED = "created"
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    ERROR = "error"
    CANCELED = "canceled"

    @property
    def rank(self) -> int:
        """Position in the lifecycle; a job only ever moves to a higher rank within one run."""
        return _RANK[self]

    @property
    def is_terminal(self) -> bool:
        return self in ENDED

    def earlier(self) -> list["JobStatus"]:
        """Statuses of a lower rank than this one."""
        return [s for s in JobStatus if s.rank < self.rank]


_RANK = MappingProxyType({
    JobStatus.CREATED: 0,
    JobStatus.QUEUED: 1,
    JobStatus.RUNNING: 2,
    JobStatus.FINISHED: 3,
    JobStatus.ERROR: 3,
    JobStatus.CANCELED: 3,
})

ENDED = (JobStatus.FINISHED, JobStatus.ERROR, JobStatus.CANCELED)
# A new run may start once the last one ended (or, from `created`, when the job never ran); a queued or
# running job is left alone (openEO: 202, nothing changes).
STARTABLE = (JobStatus.CREATED, *ENDED)
# A job with a run in progress can't be modified (openEO `JobLocked`), is canceled before deletion and is
# watched by the reaper.
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
# Runs ending so leave nothing anyone may download: their partial files are deleted.
DISCARDS_OUTPUTS = (JobStatus.ERROR, JobStatus.CANCELED)

# The transitions as data: the statuses an event of a status may move a job (of the event's run) from.
# Forward only; `running` repeats for progress reports; nothing moves a job to `created`.
TRANSITIONS: MappingProxyType[JobStatus, frozenset[JobStatus]] = MappingProxyType({
    status: frozenset(status.earlier()) | ({JobStatus.RUNNING} if status is JobStatus.RUNNING else frozenset())
    for status in JobStatus
})


def moves_from(status: JobStatus) -> frozenset[JobStatus]:
    """The statuses an event of `status` may move a job from (empty: such an event never applies)."""
    return TRANSITIONS[status]


def progress_must_rise(event_status: JobStatus, event_progress: float | None) -> bool:
    """A repeated `running` with a progress applies only if the progress rises (a late report must not
    lower the progress shown); the job's store checks it in the same conditional write."""
    return event_status is JobStatus.RUNNING and event_progress is not None


def applies(status: JobStatus, run_id: str | None, progress: float | None,
            event_status: JobStatus, event_run_id: str, event_progress: float | None = None) -> bool:
    """Whether a status event applies to a job in `status` with current run `run_id` and `progress`. The
    jobs store makes the same decision atomically (one conditional write built from `moves_from` and
    `progress_must_rise`); this is its statement in plain Python."""
    if run_id != event_run_id or status not in moves_from(event_status):
        return False
    if status is JobStatus.RUNNING and progress_must_rise(event_status, event_progress):
        return progress is None or progress < event_progress
    return True


# --- the order service's view -------------------------------------------------------------------------

ORDER_STATUS = MappingProxyType({
    JobStatus.CREATED: "RECEIVED",
    JobStatus.QUEUED: "QUEUED",
    JobStatus.RUNNING: "RUNNING",
    JobStatus.FINISHED: "SUCCESS",
    JobStatus.ERROR: "FAILED",
    JobStatus.CANCELED: "CANCELLED",
})
INVALID = "INVALID"  # an `error` whose `error_code` is an input error
ORDER_STATUSES = ("RECEIVED", "QUEUED", "RUNNING", "SUCCESS", "FAILED", INVALID, "CANCELLED")
# Order statuses that say why the order ended otherwise than hoped (`status_reason`).
ORDER_STATUSES_WITH_REASON = ("FAILED", INVALID, "CANCELLED")

# `error_code`s of input that can never succeed: an order failing with one is INVALID, not FAILED.
GEOMETRY_INVALID = "GeometryInvalid"
AREA_TOO_LARGE = "AreaTooLarge"
NO_DATA_AVAILABLE = "NoDataAvailable"  # also the engine's openEO code when a load finds nothing
INPUT_ERROR_CODES = frozenset({GEOMETRY_INVALID, AREA_TOO_LARGE, NO_DATA_AVAILABLE})


def order_status(status: JobStatus, error_code: str | None) -> str:
    """The order status of a job status: `error` is INVALID when its `error_code` is an input error."""
    if status is JobStatus.ERROR and error_code in INPUT_ERROR_CODES:
        return INVALID
    return ORDER_STATUS[status]


def job_status_of_order(order_status_name: str) -> JobStatus | None:
    """The job status an order status filters on (INVALID and FAILED are both `error`); None if unknown."""
    name = order_status_name.upper()
    if name == INVALID:
        return JobStatus.ERROR
    return next((status for status, value in ORDER_STATUS.items() if value == name), None)
