"""Status consumer: applies job status events from SQS to the jobs table, monotonically, stores
the usage (and the costs derived from it) a run reports, and tells a customer when their order ended.

A failed record is reported back (`ReportBatchItemFailures`) so only it is retried and, after the
queue's maxReceiveCount, parked in the DLQ.
"""

from functools import cache

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from stratus.backend import Backend
from stratus.domain.jobs import apply_status_event, describe_workflow_failure
from stratus.domain.logs import entry_from_event
from stratus.domain.notifications import ENDED
from stratus.events import JobStatus, LogEvent, LogLevel, parse_status_event
from stratus.observability import logger, tracer

processor = BatchProcessor(event_type=EventType.SQS)


@cache
def backend() -> Backend:
    return Backend.from_env()


def handle_record(record: SQSRecord) -> None:
    event = parse_status_event(record.body)
    from_workflow = event.status is JobStatus.ERROR and event.detail is not None
    if from_workflow:
        # came from the state machine's Catch: users read a reason, operators the raw cause (here)
        logger.warning("workflow failure", extra={"job_id": event.job_id, "run_id": event.run_id,
                                                  "error": event.reason, "cause": event.detail[:4000]})
        event = event.model_copy(update={"reason": describe_workflow_failure(event.reason, event.detail),
                                         "detail": None})
    applied = apply_status_event(backend().jobs_repository, event, backend().cost_model)
    logger.info("status event", extra={"job_id": event.job_id, "run_id": event.run_id,
                                       "status": event.status.value, "usage": event.usage is not None,
                                       "applied": applied})
    if applied and from_workflow:
        # only the job's current run speaks to its owner: a stale or repeated failure says nothing
        log = LogEvent(job_id=event.job_id, level=LogLevel.ERROR, message=event.reason, time=event.time)
        backend().logs.add(entry_from_event(log, record.message_id))
    if applied and event.status in (JobStatus.ERROR, JobStatus.CANCELED):
        backend().jobs.discard_run_outputs(event.job_id, event.run_id)
    if event.status in ENDED:
        # also after a not-applied duplicate: a notice that failed to send is retried with the record
        told = backend().order_notifier.notify_if_ended(event.job_id)
        if told:
            logger.info("order notice sent", extra={"job_id": event.job_id, "order_status": told})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
