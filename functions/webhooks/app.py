"""Webhook function: delivers signed order webhooks from the webhooks queue, apart from the status consumer.

The records of a batch are delivered at the same time (Powertools' `AsyncBatchProcessor`, each delivery
in a thread), so a batch takes about as long as its slowest receiver: one attempt's resolve timeout plus
its time budget, well inside the function's timeout. A failed delivery fails its record
(`ReportBatchItemFailures`) after moving its visibility timeout out (backoff), so SQS tries again later;
after the queue's maxReceiveCount the message is parked in the DLQ.
"""

import asyncio
from functools import cache

from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from stratus.backend import Backend
from stratus.domain.webhooks import WebhookDelivery
from stratus.observability import logger, tracer

# a batch whose webhooks all failed is an ordinary outcome, answered with all its records, not an error
processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class DeliveryFailed(Exception):
    """Fails the record so SQS delivers it again (or parks it in the DLQ)."""


@cache
def backend() -> Backend:
    return Backend.from_env()


def deliver(record: SQSRecord) -> None:
    delivery = WebhookDelivery.from_json(record.body)
    attempt = int(record.attributes.approximate_receive_count or 1)
    outcome = backend().webhooks.deliver(delivery, attempt)
    logger.info("webhook", extra={"job_id": delivery.order_id, "event_id": delivery.event_id, "attempt": attempt,
                                  "delivered": outcome.delivered, "retry_in_s": outcome.retry_in_s,
                                  "gave_up": outcome.gave_up})
    if outcome.retry_in_s is not None:
        backend().webhook_queue.retry_later(record.receipt_handle, outcome.retry_in_s)
    if outcome.record_failed:
        raise DeliveryFailed(f"webhook of {delivery.order_id} not delivered (attempt {attempt})")


async def handle_record(record: SQSRecord) -> None:
    await asyncio.to_thread(deliver, record)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    backend().webhooks  # noqa: B018 (built once here, not by the delivering threads at the same time)
    return async_process_partial_response(event=event, record_handler=handle_record, processor=processor,
                                          context=context)
