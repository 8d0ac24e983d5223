"""Status consumer: applies job status events from SQS (`stratus.domain.status.StatusService`): the job's
status monotonically with the run's usage and costs, its log and files, and the order's notice.

A failed record is reported back (`ReportBatchItemFailures`) so only it is retried and, after the
queue's maxReceiveCount, parked in the DLQ.
"""

from functools import cache

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from stratus import metrics
from stratus.backend import Backend
from stratus.events import JobStatus, parse_status_event
from stratus.observability import logger, tracer

processor = BatchProcessor(event_type=EventType.SQS)
emf = metrics.emitter(metrics.STATUS_SERVICE)


@cache
def backend() -> Backend:
    return Backend.from_env()


def handle_record(record: SQSRecord) -> None:
    outcome = backend().status.apply(parse_status_event(record.body))
    event = outcome.event
    ids = {"job_id": event.job_id, "run_id": event.run_id}
    if outcome.workflow_failure is not None:
        logger.warning("workflow failure", extra={**ids, "error": outcome.workflow_failure.error,
                                                  "cause": outcome.workflow_failure.cause})
    logger.info("status event", extra={**ids, "status": event.status.value, "usage": event.usage is not None,
                                       "applied": outcome.applied})
    if outcome.told:
        logger.info("order notice sent", extra={"job_id": event.job_id, "order_status": outcome.told})
    if outcome.applied:
        record_job_end(event.status.value, event.usage)

    if event.status is JobStatus.FINISHED:  # also for a duplicate: indexing again changes nothing
        queued = backend().result_catalogue.index_run(event.job_id, event.run_id, event.time)
        logger.info("results queued for the catalogue", extra={**ids, "items": queued})


def record_job_end(status: str, usage: dict | None) -> None:
    """Jobs by end status and their duration, for the dashboard (counted when the end event changes the job)."""
    name = metrics.JOBS_ENDED.get(status)
    if name is None:
        return
    emf.add_metric(name=name, unit=MetricUnit.Count, value=1)
    duration = (usage or {}).get("duration") or {}
    if isinstance(duration.get("value"), (int, float)):
        emf.add_metric(name=metrics.JOB_DURATION, unit=MetricUnit.Seconds, value=duration["value"])


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@emf.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
