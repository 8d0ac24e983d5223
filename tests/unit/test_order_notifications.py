"""Order-end notices: sent once per end, through SES (the emulator's), to the customer's address; webhooks are
only enqueued here (their delivery: `test_webhook_delivery.py`)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto.ses.models import ses_backends

from stratus.adapters.email import SesEmailSender
from stratus.adapters.webhooks import SqsWebhookQueue
from stratus.domain.notifications import OrderNotifier
from stratus.domain.webhooks import event_id
from stratus.events import utcnow
from stratus.store.models import JobModel, UserModel
from stratus.store.order_notices import DynamoOrderEndStore

SENDER = "no-reply@stratus.example"


@pytest.fixture
def notifier(tables):
    ses = boto3.client("ses", region_name="eu-central-1")
    ses.verify_email_identity(EmailAddress=SENDER)
    UserModel("cus-1", password_hash="", name="Ada", email="ada@example.org", created=utcnow()).save()
    return OrderNotifier(DynamoOrderEndStore(), SesEmailSender(ses, SENDER))


def inbox():
    return ses_backends["123456789012"]["eu-central-1"].sent_messages


def order(job_id="o-1", status="finished", error_code=None, notify=None, service_id="ndvi-composite"):
    now = utcnow()
    JobModel(job_id, user_id="cus-1", status=status, process={"process_graph": {}}, created=now, updated=now,
             service_id=service_id, error_code=error_code, reason="no items" if error_code else None,
             order={"notify": notify or {"email": True}}).save()


def test_a_successful_order_is_mailed_once(notifier):
    order()
    assert notifier.notify_if_ended("o-1") == "SUCCESS"
    assert notifier.notify_if_ended("o-1") is None  # duplicate end event
    (message,) = inbox()
    assert message.destinations["ToAddresses"] == ["ada@example.org"]
    assert "o-1" in message.subject and "SUCCESS" in message.subject
    assert "GET /api/v1/orders/o-1" in message.body


def test_invalid_orders_say_why(notifier):
    order(status="error", error_code="NoDataAvailable")
    assert notifier.notify_if_ended("o-1") == "INVALID"
    (message,) = inbox()
    assert "will not be retried" in message.body and "Reason: no items" in message.body


@pytest.mark.parametrize("setup", [
    dict(status="running"),                         # not ended
    dict(service_id=None),                          # an openEO job, not an order
    dict(notify={"email": False}),                  # the customer asked for no e-mail (still marked told)
])
def test_no_mail(notifier, setup):
    order(**setup)
    notifier.notify_if_ended("o-1")
    assert inbox() == []


def test_a_failed_send_is_retried_by_the_next_attempt(notifier):
    order(status="canceled")
    ses = boto3.client("ses", region_name="eu-central-1")
    # Given SES refuses the sender for a while (e.g. its identity lost verification)
    ses.delete_identity(Identity=SENDER)
    with pytest.raises(ses.exceptions.MessageRejected):
        notifier.notify_if_ended("o-1")
    assert JobModel.get("o-1").notified is None
    # When the record is retried after SES accepts the sender again
    ses.verify_email_identity(EmailAddress=SENDER)
    assert notifier.notify_if_ended("o-1") == "CANCELLED"
    # Then exactly one notice went out
    assert len(inbox()) == 1 and JobModel.get("o-1").notified == "CANCELLED"


@pytest.fixture
def webhook_queue(tables):
    sqs = boto3.client("sqs", region_name="eu-central-1")
    return sqs, sqs.create_queue(QueueName="webhooks")["QueueUrl"]


def queued(webhook_queue) -> list[dict]:
    sqs, url = webhook_queue
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_a_webhook_is_only_enqueued_once_ids_only_and_the_mail_still_goes(notifier, webhook_queue):
    # Given a notifier that hands webhooks to their queue
    notifier = OrderNotifier(DynamoOrderEndStore(), SesEmailSender(boto3.client("ses", region_name="eu-central-1"),
                                                                   SENDER), webhooks=SqsWebhookQueue(*webhook_queue))
    order(status="error", error_code="NoDataAvailable",
          notify={"email": True, "webhook_url": "https://hooks.example.com/in?token=secret"})
    # When the order's end is reported, twice
    assert notifier.notify_if_ended("o-1") == "INVALID"
    assert notifier.notify_if_ended("o-1") is None
    # Then one delivery of ids only is queued (no URL, no data), and the e-mail went out as before
    (delivery,) = queued(webhook_queue)
    assert set(delivery) == {"event_id", "order_id", "order_status", "time"}
    assert (delivery["order_id"], delivery["order_status"]) == ("o-1", "INVALID")
    assert delivery["event_id"] == event_id("o-1", "INVALID") != event_id("o-1", "SUCCESS")
    assert len(inbox()) == 1


def test_no_webhook_no_delivery(notifier, webhook_queue):
    notifier = OrderNotifier(DynamoOrderEndStore(), SesEmailSender(boto3.client("ses", region_name="eu-central-1"),
                                                                   SENDER), webhooks=SqsWebhookQueue(*webhook_queue))
    order(notify={"email": True})
    assert notifier.notify_if_ended("o-1") == "SUCCESS"
    assert queued(webhook_queue) == [] and len(inbox()) == 1
