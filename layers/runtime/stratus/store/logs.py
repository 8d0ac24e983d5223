"""PynamoDB implementation of `LogRepository`."""

from __future__ import annotations

from collections.abc import Sequence

from stratus.domain.logs import LogEntry, LogRepository
from stratus.store.models import LogEntryModel


class DynamoLogRepository(LogRepository):
    def add(self, entry: LogEntry) -> None:
        # Keyed by (job, log id): a redelivered event overwrites itself instead of duplicating.
        LogEntryModel(entry.job_id, entry.log_id, level=entry.level, message=entry.message, time=entry.time,
                      code=entry.code, path=entry.path, data=entry.data).save()

    def list(self, job_id: str, after: str | None, limit: int, levels: Sequence[str] | None = None
             ) -> list[LogEntry]:
        condition = LogEntryModel.log_id > after if after else None
        only = LogEntryModel.level.is_in(*levels) if levels else None
        # PynamoDB's `limit` counts the items returned after the filter, reading on page after page
        items = LogEntryModel.query(job_id, range_key_condition=condition, filter_condition=only, limit=limit,
                                    consistent_read=True)
        return [LogEntry(job_id=i.job_id, log_id=i.log_id, level=i.level, message=i.message, time=i.time,
                         code=i.code, path=i.path, data=i.data) for i in items]

    def delete_for_job(self, job_id: str) -> None:
        """All entries of a job (`DELETE /jobs/{job_id}`), in batches of DynamoDB's 25 writes."""
        with LogEntryModel.batch_write() as batch:
            for item in LogEntryModel.query(job_id, attributes_to_get=["job_id", "log_id"]):
                batch.delete(item)
