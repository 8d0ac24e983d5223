"""The ingest queue's ends: sending catalogue changes, parking rejected ones in its DLQ with the reason, and
reading item JSON put under the ingest prefix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stratus.domain.stac_items import IngestMessage

SQS_BATCH = 10  # SendMessageBatch's maximum
REASON_ATTRIBUTE = "reason"
MAX_REASON_CHARS = 1000


class SqsIngestQueue:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def send(self, messages: Sequence[IngestMessage]) -> None:
        for start in range(0, len(messages), SQS_BATCH):
            chunk = messages[start:start + SQS_BATCH]
            response = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=[
                {"Id": str(i), "MessageBody": message.to_json()} for i, message in enumerate(chunk)])
            if response.get("Failed"):
                raise RuntimeError(f"the ingest queue refused {len(response['Failed'])} messages")


class SqsRejects:
    """The ingest DLQ: a rejected change with the reason as a message attribute (and in the body's envelope, so
    the reason survives tools that drop attributes)."""

    def __init__(self, sqs: Any, dlq_url: str) -> None:
        self._sqs = sqs
        self._dlq_url = dlq_url

    def park(self, body: str, reason: str) -> None:
        self._sqs.send_message(QueueUrl=self._dlq_url, MessageBody=body, MessageAttributes={
            REASON_ATTRIBUTE: {"DataType": "String", "StringValue": reason[:MAX_REASON_CHARS] or "invalid"}})


class S3IngestObjects:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def read(self, key: str) -> bytes:
        return self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
