"""A local event source mapping: drains an SQS queue into a Lambda handler like AWS does.

Long-polls until the batch size or the batching window is reached, builds real SQS event
records, calls the handler and, with `ReportBatchItemFailures`, deletes all but the reported
failures. Redrive to the DLQ after `maxReceiveCount` is the emulator's own.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Any, Callable

from stratus.resources import QueueSpec
from stratus_local.lambda_context import LocalLambdaContext

log = logging.getLogger(__name__)

SQS_MAX_RECEIVE = 10  # the most ReceiveMessage returns at once


class SqsPoller:
    def __init__(
        self,
        sqs_client: Any,
        queue_url: str,
        queue_arn: str,
        spec: QueueSpec,
        handler: Callable[[dict, Any], Any],
        function_name: str,
        retry_delay_s: int | None = None,
        poll_wait_s: int = 5,
    ) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._spec = spec
        self._handler = handler
        self._function_name = function_name
        # AWS retries a failed record after the visibility timeout; locally that may be shortened so
        # retries and DLQ redrive happen in seconds (None keeps the queue's own timeout).
        self._retry_delay_s = retry_delay_s
        # a long poll returns as soon as a message arrives; longer waits only make an idle queue cheaper
        self._poll_wait_s = poll_wait_s
        self._stop = threading.Event()
        self._delivering = threading.Lock()  # held while a batch is handed to the handler
        self._thread = threading.Thread(target=self._run, name=f"poller-{spec.logical_name}", daemon=True)
        self.invocations = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Returns once no batch is being delivered and none will be; a long poll still under way ends on its own
        (what it receives stays in the queue and is received again after its visibility timeout)."""
        self._stop.set()
        with self._delivering:
            pass

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self._collect_batch()
                if batch:
                    with self._delivering:
                        if self._stop.is_set():
                            return
                        self._deliver(batch)
            except Exception:  # keep polling, as the managed mapping does; the message stays queued
                if self._stop.is_set():
                    return  # the emulator may stop before this poll ends
                log.exception("poller %s failed", self._spec.logical_name)
                self._stop.wait(1)

    def _collect_batch(self) -> list[dict]:
        messages: list[dict] = []
        deadline = None
        while len(messages) < self._spec.batch_size and not self._stop.is_set():
            wanted = min(SQS_MAX_RECEIVE, self._spec.batch_size - len(messages))
            wait = self._poll_wait_s
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                wait = max(0, min(wait, int(remaining)))
            response = self._sqs.receive_message(
                QueueUrl=self._queue_url, MaxNumberOfMessages=wanted, WaitTimeSeconds=wait,
                AttributeNames=["All"], MessageAttributeNames=["All"],
            )
            received = response.get("Messages", [])
            if received and deadline is None:
                deadline = time.monotonic() + self._spec.max_batching_window_s
            messages.extend(received)
            if not received and messages:
                break  # the queue is drained: don't sit out the rest of the window
            if not messages:
                return []
        return messages

    def _record(self, message: dict) -> dict:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._queue_arn.split(":")[3] if self._queue_arn.count(":") >= 5 else "eu-central-1",
        }

    def _deliver(self, messages: list[dict]) -> None:
        event = {"Records": [self._record(m) for m in messages]}
        context = LocalLambdaContext(function_name=self._function_name)
        self.invocations += 1
        try:
            response = self._handler(event, context) or {}
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:  # a crashed invocation fails the whole batch
            log.exception("consumer %s raised", self._function_name)
            failed = {m["MessageId"] for m in messages}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), SQS_MAX_RECEIVE):
            chunk = done[start:start + SQS_MAX_RECEIVE]
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        if failed and self._retry_delay_s is not None:
            retry = [m for m in messages if m["MessageId"] in failed]
            for m in retry:
                self._sqs.change_message_visibility(QueueUrl=self._queue_url, ReceiptHandle=m["ReceiptHandle"],
                                                    VisibilityTimeout=self._retry_delay_s)
