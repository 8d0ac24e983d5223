"""Log consumer: stores job log entries from SQS so `GET /jobs/{job_id}/logs` can serve them."""

from functools import cache

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from stratus.backend import Backend
from stratus.domain.logs import entry_from_event
from stratus.events import parse_log_event
from stratus.observability import logger, tracer

processor = BatchProcessor(event_type=EventType.SQS)


@cache
def backend() -> Backend:
    return Backend.from_env()


def handle_record(record: SQSRecord) -> None:
    backend().logs.add(entry_from_event(parse_log_event(record.body), record.message_id))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
