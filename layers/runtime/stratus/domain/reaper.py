"""The reaper: ends jobs whose run was lost. A status event that never arrived, an execution that failed
without reporting, a Batch job that never found capacity: the job would read `queued` or `running`
forever. Scheduled, it asks the workflow about every run that has been quiet for a while and ends the
lost ones through the normal status path (the status queue), so every rule of that path holds: the
transition is monotonic, a run that moved on meanwhile is left alone, the customer is told.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from stratus import events as event_types  # its models load on first use
from stratus.domain.lifecycle import ACTIVE, JobStatus
from stratus.events import utcnow

if TYPE_CHECKING:  # `stratus.resources` reads the policy here; the job and event classes are not needed for it
    from stratus.domain.jobs import Job
    from stratus.events import StatusEvent

EXECUTION_ENDED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")

NEVER_STARTED_REASON = "The job's processing never started (its workflow could not be found); please start it again."
LOST_REASON = "The job's workflow ended ({state}) without reporting why; please start it again."
NO_CAPACITY_REASON = ("No processing capacity became available within {minutes:g} minutes, so the job was "
                      "stopped; please start it again later.")


@dataclass(frozen=True)
class RunState:
    """What the workflow knows of a run: its execution's status (None: there is no execution); while it
    runs, the status of its Batch job and since when; once it failed, the failure as the state machine's
    Catch saw it (`$.error.Error` / `$.error.Cause`; None when it can't be found)."""

    execution: str | None
    batch_status: str | None = None
    batch_since: datetime | None = None
    error: str | None = None
    cause: str | None = None


class RunInspector(Protocol):
    def state(self, job_id: str, run_id: str) -> RunState: ...

    def stop(self, job_id: str, run_id: str) -> None: ...


class ActiveJobs(Protocol):
    def quiet_since(self, before: datetime) -> Iterable[Job]:
        """Jobs with a run queued or running whose last update is older than `before`, oldest first, read
        page by page as they are consumed."""
        ...


class StatusSink(Protocol):
    def status(self, event: StatusEvent) -> None: ...


@dataclass(frozen=True)
class ReaperPolicy:
    quiet_after_s: int = 15 * 60  # a run that reported nothing for this long is looked at
    never_started_after_s: int = 10 * 60  # queued this long without an execution: the start was lost
    runnable_limit_s: int = 60 * 60  # a Batch job waiting this long for capacity is given up
    # a round stops looking at more runs when its function has less time left than this (the next round,
    # minutes later, goes on); no fixed batch, so healthy long runs can't crowd out lost ones
    reserve_s: float = 10.0


class Reaper:
    def __init__(self, jobs: ActiveJobs, runs: RunInspector, events: StatusSink,
                 policy: ReaperPolicy = ReaperPolicy()) -> None:
        self._jobs = jobs
        self._runs = runs
        self._events = events
        self._policy = policy

    def run(self, now: datetime | None = None, time_left_s: Callable[[], float] | None = None) -> list[StatusEvent]:
        """Looks at every quiet run, oldest first, while `time_left_s()` (the function's remaining time)
        stays above the policy's reserve; returns the events sent (one per lost run)."""
        now = now or utcnow()
        sent = []
        for job in self._jobs.quiet_since(now - timedelta(seconds=self._policy.quiet_after_s)):
            if time_left_s is not None and time_left_s() < self._policy.reserve_s:
                break
            if job.run_id is None or job.status not in ACTIVE:
                continue
            event = self.verdict(job, self._runs.state(job.job_id, job.run_id), now)
            if event is not None:
                self._events.status(event)
                sent.append(event)
        return sent

    def verdict(self, job: Job, state: RunState, now: datetime) -> StatusEvent | None:
        """The event that ends a lost run, or None while the run is alive."""
        run = {"job_id": job.job_id, "run_id": job.run_id, "time": now}
        if state.execution is None:
            since = job.queued or job.updated
            if now - since >= timedelta(seconds=self._policy.never_started_after_s):
                return event_types.StatusEvent(**run, status=JobStatus.ERROR, reason=NEVER_STARTED_REASON)
            return None
        if state.execution == "SUCCEEDED":  # the workflow's own `finished` event was lost
            return event_types.StatusEvent(**run, status=JobStatus.FINISHED, progress=100)
        if state.execution == "FAILED" and state.error:
            # shaped like the Catch's own event, so the status consumer words it (`describe_workflow_failure`)
            # and logs it for the run, as if the lost event had arrived
            return event_types.StatusEvent(**run, status=JobStatus.ERROR, reason=state.error, detail=state.cause or "")
        if state.execution == "TIMED_OUT":
            return event_types.StatusEvent(**run, status=JobStatus.ERROR, reason="States.Timeout", detail="")
        if state.execution in EXECUTION_ENDED:
            return event_types.StatusEvent(**run, status=JobStatus.ERROR,
                               reason=LOST_REASON.format(state=state.execution.lower().replace("_", " ")))
        if state.batch_status == "RUNNABLE" and state.batch_since is not None \
                and now - state.batch_since >= timedelta(seconds=self._policy.runnable_limit_s):
            self._runs.stop(job.job_id, job.run_id)
            return event_types.StatusEvent(**run, status=JobStatus.ERROR,
                               reason=NO_CAPACITY_REASON.format(minutes=self._policy.runnable_limit_s / 60))
        return None
