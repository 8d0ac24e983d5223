"""Catalogue indexer: drains the ingest queue in batches (`stratus.domain.indexer.Indexer`). Invalid items are
parked in the DLQ with their reason; only records whose collection could not be written are reported back
(`ReportBatchItemFailures`) for redelivery."""

from functools import cache

from aws_lambda_powertools.utilities.typing import LambdaContext

from stratus.backend import Backend
from stratus.domain.indexer import Record
from stratus.observability import logger, tracer


@cache
def backend() -> Backend:
    return Backend.from_env()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    records = [Record(record["messageId"], record["body"]) for record in event.get("Records", [])]
    outcome = backend().indexer.handle(records)
    for message_id, reason in outcome.rejected:
        logger.warning("item rejected", extra={"message_id": message_id, "reason": reason})
    logger.info("batch indexed", extra={"records": len(records), "indexed": outcome.indexed,
                                        "rejected": len(outcome.rejected), "failed": len(outcome.failed),
                                        "files": len(outcome.files)})
    return outcome.response()
