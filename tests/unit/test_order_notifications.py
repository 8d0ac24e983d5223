"""Order-end notices: sent once per end, through SES (the emulator's), to the customer's address."""

from __future__ import annotations

import boto3
import pytest
from moto.ses.models import ses_backends

from stratus.adapters.email import SesEmailSender
from stratus.domain.notifications import OrderNotifier
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


class Receiver:
    """A real HTTP endpoint on localhost that records what webhooks POST to it."""

    def __init__(self, status: int = 204) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class RecordingLog:
    def __init__(self):
        self.events = []

    def log(self, event):
        self.events.append(event)


class RecordingQueue:
    def __init__(self):
        self.deliveries = []

    def send(self, delivery):
        self.deliveries.append(delivery)


def deliverer(log, max_attempts=3):
    from stratus.adapters.webhooks import GuardedWebhookPoster
    from stratus.domain.webhooks import WebhookDeliverer
    from stratus.outbound import AllowList, OutboundGuard, Timeouts
    from stratus.store.order_notices import DynamoWebhookTargets

    guard = OutboundGuard(allow=AllowList.parse("127.0.0.1"))  # the test receivers' own address only
    return WebhookDeliverer(DynamoWebhookTargets(), GuardedWebhookPoster(guard, Timeouts()), lambda: "master-key",
                            log, max_attempts=max_attempts, retry_delay_s=1)


def test_a_webhook_is_enqueued_and_delivered_signed_the_customer_can_verify(tables):
    import json

    from stratus.domain.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, customer_webhook_secret, verify

    receiver = Receiver()
    ses = boto3.client("ses", region_name="eu-central-1")
    ses.verify_email_identity(EmailAddress=SENDER)
    UserModel("cus-1", password_hash="", email="ada@example.org", created=utcnow()).save()
    order(notify={"email": False, "webhook_url": receiver.url})
    queue = RecordingQueue()
    notifier = OrderNotifier(DynamoOrderEndStore(), SesEmailSender(ses, SENDER), webhooks=queue)
    # the status consumer only enqueues (ids, no network)
    assert notifier.notify_if_ended("o-1") == "SUCCESS"
    (delivery,) = queue.deliveries
    assert receiver.received == []
    # the webhook function delivers it
    try:
        outcome = deliverer(RecordingLog()).deliver(delivery, attempt=1)
    finally:
        receiver.server.shutdown()
    assert outcome.delivered
    ((headers, body),) = receiver.received
    assert json.loads(body)["status"] == "SUCCESS" and json.loads(body)["order_id"] == "o-1"
    assert headers[EVENT_ID_HEADER] == delivery.event_id
    secret = customer_webhook_secret("master-key", "cus-1")
    assert verify(secret, body, headers[SIGNATURE_HEADER])
    assert not verify(customer_webhook_secret("master-key", "cus-2"), body, headers[SIGNATURE_HEADER])
    assert not verify(secret, body + b" ", headers[SIGNATURE_HEADER])


def test_a_failing_receiver_is_retried_then_given_up_with_generic_log_entries(tables):
    UserModel("cus-1", password_hash="", email="ada@example.org", created=utcnow()).save()
    receiver = Receiver(status=503)
    order(notify={"email": False, "webhook_url": receiver.url})
    queue = RecordingQueue()
    OrderNotifier(DynamoOrderEndStore(), SesEmailSender(boto3.client("ses", region_name="eu-central-1"), SENDER),
                  webhooks=queue).notify_if_ended("o-1")
    log = RecordingLog()
    try:
        first = deliverer(log, max_attempts=2).deliver(queue.deliveries[0], attempt=1)
        last = deliverer(log, max_attempts=2).deliver(queue.deliveries[0], attempt=2)
    finally:
        receiver.server.shutdown()
    assert first.retry_in_s and not last.retry_in_s and last.gave_up
    assert len(receiver.received) == 2
    assert [e.level.value for e in log.events] == ["warning", "error"]
    assert all("HTTP 503" in e.message and receiver.url not in e.message for e in log.events)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data/",
                                 "http://10.0.0.7/", "http://[::1]:9/", "http://2130706433/", "http://0x7f.1/"])
def test_a_receiver_on_a_private_address_is_never_contacted(tables, url):
    from stratus.adapters.webhooks import GuardedWebhookPoster
    from stratus.domain.webhooks import WebhookDeliverer
    from stratus.outbound import OutboundGuard, Timeouts
    from stratus.store.order_notices import DynamoWebhookTargets

    UserModel("cus-1", password_hash="", email="ada@example.org", created=utcnow()).save()
    order(notify={"email": False, "webhook_url": url})
    queue = RecordingQueue()
    OrderNotifier(DynamoOrderEndStore(), SesEmailSender(boto3.client("ses", region_name="eu-central-1"), SENDER),
                  webhooks=queue).notify_if_ended("o-1")
    log = RecordingLog()
    outcome = WebhookDeliverer(DynamoWebhookTargets(), GuardedWebhookPoster(OutboundGuard(), Timeouts()),
                               lambda: "k", log, max_attempts=3, retry_delay_s=1).deliver(queue.deliveries[0], 1)
    assert not outcome.delivered and not outcome.record_failed  # dropped, not retried
    (entry,) = log.events
    assert entry.message == "Webhook not sent: the URL's host is not a public address."
