"""Order webhooks on AWS: the webhooks queue (SQS) and the HTTP POST through the outbound guard."""

from __future__ import annotations

from typing import Any

from stratus.domain.webhooks import NotPublicTarget, ReceiverUnreachable, WebhookDelivery
from stratus.outbound import HostNotResolved, OutboundFailed, OutboundGuard, OutboundRefused, Timeouts
from stratus.observability import logger


class SqsWebhookQueue:
    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url

    def send(self, delivery: WebhookDelivery) -> None:
        self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=delivery.to_json())

    def retry_later(self, receipt_handle: str, delay_s: int) -> None:
        """The failed record comes back after `delay_s` instead of the queue's visibility timeout (backoff)."""
        self._sqs.change_message_visibility(QueueUrl=self._queue_url, ReceiptHandle=receipt_handle,
                                            VisibilityTimeout=min(delay_s, 12 * 3600))


class GuardedWebhookPoster:
    """POSTs to the checked, pinned address of the URL; no redirects. What went wrong on the network is
    logged for operators (without the URL, which may hold a receiver's token) and never returned."""

    def __init__(self, guard: OutboundGuard, timeouts: Timeouts) -> None:
        self._guard = guard
        self._timeouts = timeouts

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        try:
            return self._guard.request("POST", url, body=body, headers=headers, timeouts=self._timeouts).status
        except HostNotResolved as error:  # perhaps a passing DNS failure: try again later
            logger.info("webhook host not resolved", extra={"error": type(error).__name__})
            raise ReceiverUnreachable(timed_out=False) from None
        except OutboundRefused as error:
            logger.info("webhook target refused", extra={"error": type(error).__name__})
            raise NotPublicTarget() from None
        except OutboundFailed as error:
            logger.info("webhook not answered", extra={"error": repr(error.__cause__ or error),
                                                       "timed_out": error.timed_out})
            raise ReceiverUnreachable(timed_out=error.timed_out) from None
