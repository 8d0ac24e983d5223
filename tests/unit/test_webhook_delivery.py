"""Delivering one order webhook: the real deliverer, the jobs table and the log queue in the emulator, the
outbound guard, and real HTTP receivers on 127.0.0.1 (allow-listed, as an operator would their own)."""

from __future__ import annotations

import json
import socket

import boto3
import pytest

from stratus.adapters.webhooks import GuardedWebhookPoster
from stratus.domain.webhooks import (
    EVENT_HEADER,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    WebhookDeliverer,
    WebhookDelivery,
    customer_webhook_secret,
    event_id,
    verify,
)
from stratus.events import EventPublisher, utcnow
from stratus.outbound import AllowList, OutboundGuard, Timeouts
from stratus.store.models import JobModel
from stratus.store.order_notices import DynamoWebhookTargets
from tests.receivers import ConnectionRecorder, WebhookReceiver

DELIVERY = WebhookDelivery(event_id=event_id("o-1", "SUCCESS"), order_id="o-1", order_status="SUCCESS",
                           time="2026-06-01T12:00:00Z")
NETWORK_WORDS = ("errno", "refused", "reset", "timed out", "timeout", "127.0.0.1", "connection")


class Harness:
    def __init__(self, allow: str = "127.0.0.1") -> None:
        sqs = boto3.client("sqs", region_name="eu-central-1")
        self._sqs = sqs
        self._log_url = sqs.create_queue(QueueName="logs")["QueueUrl"]
        events = EventPublisher(sqs, sqs.create_queue(QueueName="status")["QueueUrl"], self._log_url)
        poster = GuardedWebhookPoster(OutboundGuard(AllowList.parse(allow)),
                                      Timeouts(connect_s=1.0, read_s=0.5, budget_s=1.0))
        self.deliverer = WebhookDeliverer(DynamoWebhookTargets(), poster, lambda: "master-key", events,
                                          max_attempts=3, retry_delay_s=30)

    def order(self, webhook_url: str | None) -> None:
        now = utcnow()
        JobModel("o-1", user_id="cus-1", status="finished", process={"process_graph": {}}, created=now, updated=now,
                 service_id="ndvi-composite", order={"notify": {"email": False, "webhook_url": webhook_url}}).save()

    def logged(self) -> list[dict]:
        """The order-log entries sent since the last call."""
        messages = self._sqs.receive_message(QueueUrl=self._log_url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            self._sqs.delete_message(QueueUrl=self._log_url, ReceiptHandle=message["ReceiptHandle"])
        return [json.loads(m["Body"]) for m in messages]


@pytest.fixture
def harness(tables):
    return Harness()


def test_a_delivered_webhook_is_signed_carries_its_event_id_and_is_logged_once(harness):
    with WebhookReceiver(204) as receiver:
        harness.order(receiver.url("/in?token=abc"))
        outcome = harness.deliverer.deliver(DELIVERY, attempt=1)
        # a repeat (SQS delivers at least once) sends the same bytes with the same event id
        harness.deliverer.deliver(DELIVERY, attempt=2)
    assert outcome.delivered and not outcome.record_failed
    (headers, body), (repeat_headers, repeat_body) = receiver.received
    notice = json.loads(body)
    assert notice["event_id"] == DELIVERY.event_id == headers[EVENT_ID_HEADER] == repeat_headers[EVENT_ID_HEADER]
    assert (notice["order_id"], notice["status"], notice["event"]) == ("o-1", "SUCCESS", headers[EVENT_HEADER])
    assert body == repeat_body and headers["Content-Type"] == "application/json"
    secret = customer_webhook_secret("master-key", "cus-1")
    assert verify(secret, body, headers[SIGNATURE_HEADER])
    assert not verify(customer_webhook_secret("master-key", "cus-2"), body, headers[SIGNATURE_HEADER])
    assert not verify(secret, body + b" ", headers[SIGNATURE_HEADER])
    assert [e["message"] for e in harness.logged()] == ["Webhook delivered (HTTP 204)."] * 2


def test_a_receiver_that_fails_is_retried_with_backoff_then_given_up(harness):
    with WebhookReceiver(503) as receiver:
        harness.order(receiver.url())
        outcomes = [harness.deliverer.deliver(DELIVERY, attempt) for attempt in (1, 2, 3)]
    assert len(receiver.received) == 3
    assert [o.retry_in_s for o in outcomes] == [30, 60, None]
    assert all(o.record_failed for o in outcomes) and outcomes[2].gave_up  # the last failure goes to the DLQ
    assert [(e["level"], e["message"]) for e in harness.logged()] == [
        ("warning", "Webhook not delivered: the receiver did not accept it (HTTP 503); retrying."),
        ("warning", "Webhook not delivered: the receiver did not accept it (HTTP 503); retrying."),
        ("error", "Webhook delivery failed after 3 attempts: the receiver did not accept it (HTTP 503)."),
    ]


def test_a_receiver_that_recovers_gets_the_notice_on_the_retry(harness):
    with WebhookReceiver(500, 200) as receiver:
        harness.order(receiver.url())
        first, second = (harness.deliverer.deliver(DELIVERY, attempt) for attempt in (1, 2))
    assert first.retry_in_s == 30 and second.delivered and len(receiver.received) == 2
    assert [e["message"] for e in harness.logged()][-1] == "Webhook delivered (HTTP 200)."


def test_network_failures_are_logged_in_plain_words_without_the_error(harness):
    with socket.create_server(("127.0.0.1", 0)) as closed:
        dead_port = closed.getsockname()[1]
    harness.order(f"http://127.0.0.1:{dead_port}/hook")
    assert harness.deliverer.deliver(DELIVERY, attempt=1).retry_in_s == 30
    with WebhookReceiver(204, delay_s=3) as stalled:  # answers after the 1 s budget
        harness.order(stalled.url())
        assert harness.deliverer.deliver(DELIVERY, attempt=1).retry_in_s == 30
    messages = [e["message"] for e in harness.logged()]
    assert messages == ["Webhook not delivered: the receiver could not be reached; retrying.",
                        "Webhook not delivered: the receiver did not answer in time; retrying."]
    assert not any(word in message.lower() for message in messages for word in NETWORK_WORDS)


@pytest.mark.parametrize("status, problem", [(404, "refused it (HTTP 404)"),
                                             (302, "answered with a redirect, which is not followed (HTTP 302)")])
def test_a_refusal_or_redirect_is_not_retried(harness, status, problem):
    with WebhookReceiver(status) as receiver:
        harness.order(receiver.url())
        outcome = harness.deliverer.deliver(DELIVERY, attempt=1)
    assert not outcome.delivered and not outcome.record_failed and len(receiver.received) == 1
    assert [e["message"] for e in harness.logged()] == [f"Webhook not delivered: the receiver {problem}."]


def test_the_url_is_checked_again_at_delivery_and_an_internal_one_is_never_called(tables):
    # Given an order whose webhook host is (now) an internal address, and no allow-list
    harness = Harness(allow="")
    with ConnectionRecorder() as internal:
        harness.order(f"http://localhost:{internal.port}/hook")
        outcome = harness.deliverer.deliver(DELIVERY, attempt=1)
    # Then nothing was contacted, the message is dropped (no retry) and the log says why in general words
    assert internal.connections == 0
    assert not outcome.delivered and not outcome.record_failed
    assert [(e["level"], e["message"]) for e in harness.logged()] == [
        ("warning", "Webhook not sent: the URL's host is not a public address.")]


@pytest.mark.parametrize("webhook_url", [None, "", "gone"])
def test_nothing_to_deliver(harness, webhook_url):
    if webhook_url != "gone":
        harness.order(webhook_url)
    outcome = harness.deliverer.deliver(DELIVERY, attempt=1)
    assert not outcome.delivered and not outcome.record_failed and harness.logged() == []
