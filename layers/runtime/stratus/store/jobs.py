"""PynamoDB implementation of `JobRepository`; every transition is one conditional write."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError

from stratus.domain.jobs import Job, JobRepository
from stratus.domain.lifecycle import ENDED, JobStatus, progress_must_rise
from stratus.errors import BadRequestException
from stratus.store.dynamo import decode_page_token, encode_page_token, is_condition_failure
from stratus.store.models import ACTIVE_MARK, JobModel

if TYPE_CHECKING:  # the pydantic event models load when an event is made (`stratus.events`)
    from stratus.events import StatusEvent

QUIET_JOBS_PAGE_SIZE = 100  # keys per read of the active-jobs index (the reaper looks at them one by one)

_TIMESTAMP_FOR = {
    JobStatus.QUEUED: JobModel.queued,
    JobStatus.RUNNING: JobModel.started,
    JobStatus.FINISHED: JobModel.finished,
    JobStatus.ERROR: JobModel.finished,
    JobStatus.CANCELED: JobModel.finished,
}


def _invalid_token() -> Exception:
    return BadRequestException(reason="`after` is not a page token of this listing")


# The one mapping between a job row and a `Job`: the jobs store, the orders store and the order notices
# use it. A field of both has the same name; `status` is stored as its value.
_JOB_FIELDS = tuple(f.name for f in fields(Job) if f.name != "status")


def job_from_item(item: JobModel) -> Job:
    return Job(status=JobStatus(item.status), **{name: getattr(item, name) for name in _JOB_FIELDS})


def item_from_job(job: Job) -> JobModel:
    """A new row of the job (written with a condition that it does not exist yet)."""
    return JobModel(status=job.status.value, **{name: getattr(job, name) for name in _JOB_FIELDS})


class DynamoJobRepository(JobRepository):
    def add(self, job: Job) -> None:
        item = item_from_job(job)
        try:
            item.save(condition=JobModel.job_id.does_not_exist())
        except PutError as error:
            if is_condition_failure(error):
                raise ValueError(f"job {job.job_id} exists already") from error
            raise

    def get(self, job_id: str) -> Job | None:
        try:
            return job_from_item(JobModel.get(job_id, consistent_read=True))
        except DoesNotExist:
            return None

    def list_for_user(self, user_id: str, limit: int, after: str | None) -> tuple[list[Job], str | None]:
        start_key = decode_page_token(after, {"job_id", "user_id", "created"}, _invalid_token,
                                      owner=("user_id", user_id)) if after else None
        query = JobModel.user_jobs.query(user_id, limit=limit, last_evaluated_key=start_key,
                                         scan_index_forward=False)
        jobs = [job_from_item(item) for item in query]
        return jobs, encode_page_token(query.last_evaluated_key)

    def begin_run(self, job_id: str, run_id: str, ended: tuple[JobStatus, ...], now: datetime) -> bool:
        # one conditional write: a job never started (created, no run) or whose last run ended; so of
        # parallel starts exactly one wins, and the winner's job reads `queued` at once
        never_started = (JobModel.status == JobStatus.CREATED.value) & JobModel.run_id.does_not_exist()
        try:
            JobModel(job_id).update(
                actions=[
                    JobModel.run_id.set(run_id),
                    JobModel.status.set(JobStatus.QUEUED.value),
                    JobModel.active.set(ACTIVE_MARK),
                    JobModel.progress.set(0),
                    JobModel.updated.set(now),
                    JobModel.queued.set(now),
                    JobModel.reason.remove(),
                    JobModel.started.remove(),
                    JobModel.finished.remove(),
                    JobModel.usage.remove(),
                    JobModel.costs.remove(),
                    JobModel.error_code.remove(),  # a new run has not failed (yet)
                    JobModel.notified.remove(),  # and its end is news again
                ],
                condition=never_started | JobModel.status.is_in(*[s.value for s in ended]),
            )
            return True
        except UpdateError as error:
            if is_condition_failure(error):
                return False
            raise

    def apply_status(self, event: StatusEvent, allowed_from: list[JobStatus], now: datetime) -> bool:
        actions = [JobModel.status.set(event.status.value), JobModel.updated.set(now)]
        condition = (JobModel.run_id == event.run_id) & JobModel.status.is_in(*[s.value for s in allowed_from])
        if progress_must_rise(event.status, event.progress):
            # a late progress report must not lower the progress shown
            condition &= JobModel.status.is_in(*[s.value for s in allowed_from if s is not JobStatus.RUNNING]) \
                | JobModel.progress.does_not_exist() | (JobModel.progress < event.progress)
        if event.status in _TIMESTAMP_FOR:
            timestamp = _TIMESTAMP_FOR[event.status]
            actions.append(timestamp.set(timestamp | event.time))  # if_not_exists: the first report wins
        if event.progress is not None:
            actions.append(JobModel.progress.set(event.progress))
        if event.reason:
            actions.append(JobModel.reason.set(event.reason))
        if event.error_code:
            actions.append(JobModel.error_code.set(event.error_code))
        if event.status in ENDED:
            actions.append(JobModel.active.remove())  # leaves the reaper's index
        try:
            JobModel(event.job_id).update(actions=actions, condition=condition)
            return True
        except UpdateError as error:
            if is_condition_failure(error):
                return False
            raise

    def record_usage(self, job_id: str, run_id: str, usage: dict, costs: float | None) -> bool:
        actions = [JobModel.usage.set(usage)]
        if costs is not None:
            actions.append(JobModel.costs.set(costs))
        try:
            JobModel(job_id).update(actions=actions,
                                    condition=(JobModel.run_id == run_id) & JobModel.usage.does_not_exist())
            return True
        except UpdateError as error:
            if is_condition_failure(error):
                return False
            raise

    _UPDATABLE = {"title": JobModel.title, "description": JobModel.description, "process": JobModel.process,
                  "plan": JobModel.plan, "budget": JobModel.budget}

    def update(self, job_id: str, changes: dict, locked: tuple[JobStatus, ...], now: datetime) -> bool:
        actions = [JobModel.updated.set(now)]
        for name, value in changes.items():
            attribute = self._UPDATABLE[name]
            actions.append(attribute.remove() if value is None else attribute.set(value))
        condition = JobModel.job_id.exists() & ~JobModel.status.is_in(*[s.value for s in locked])
        try:
            JobModel(job_id).update(actions=actions, condition=condition)
            return True
        except UpdateError as error:
            if is_condition_failure(error):
                return False
            raise

    def quiet_since(self, before: datetime) -> Iterator[Job]:
        """Jobs with a run queued or running, last updated before `before`, oldest first (the sparse
        `active-jobs` index, keys only), read a page at a time as the caller goes on."""
        keys = JobModel.active_jobs.query(ACTIVE_MARK, range_key_condition=JobModel.updated < before,
                                          page_size=QUIET_JOBS_PAGE_SIZE)
        for item in keys:
            job = self.get(item.job_id)
            if job is not None:  # deleted meanwhile
                yield job

    def delete(self, job_id: str) -> None:
        try:
            JobModel(job_id).delete()
        except DeleteError as error:
            if not is_condition_failure(error):
                raise
