"""Order webhooks through the real local system: internal targets are refused at order time, and slow
receivers are waited for by the webhook function alone, never by anyone's job status."""

from __future__ import annotations

import time

import pytest

from tests.e2e.test_openeo_client_job import COLLECTION, wait_for
from tests.e2e.test_order_service import JUNE, SAHARA, register
from tests.receivers import ALLOWED_PRIVATE_HOST, ConnectionRecorder, WebhookReceiver

pytestmark = pytest.mark.e2e

SLOW_RECEIVER_S = 6  # longer than a delivery's read timeout: each attempt ends "did not answer in time"
SLOW_ORDERS = 3
# what the other user's job may take from start to `queued` here; with webhooks inside the status consumer the
# three slow receivers alone held it for 3 x 5 s (read timeout) and more
QUEUED_WITHIN_S = 8
TINY_BOX = {"west": 11.33, "south": 46.49, "east": 11.335, "north": 46.495}
REFUSED = "Invalid request: `notify.webhook_url`: the URL's host is not a public address"
NOT_ANSWERED = "Webhook not delivered: the receiver did not answer in time; retrying."


@pytest.fixture(scope="module")
def base(local_system):
    return local_system.api_url


def test_webhooks_to_internal_addresses_are_refused_over_http(base, local_system):
    customer = register(base, "mallory", local_system)
    with ConnectionRecorder() as internal:
        for url in (f"http://127.0.0.1:{internal.port}/", f"http://[::ffff:127.0.0.1]:{internal.port}/",
                    "http://169.254.169.254/latest/meta-data/", "http://metadata.google.internal/"):
            response = customer.request("POST", "/services/ndvi-composite/orders", json={
                "parameters": {"area": SAHARA, **JUNE}, "notify": {"webhook_url": url}})
            assert response.status_code == 400 and response.json()["code"] == "InvalidRequest", (url, response.text)
            assert response.json()["message"] == REFUSED
    assert internal.connections == 0
    assert customer.request("GET", "/orders").json()["orders"] == []


def test_slow_webhooks_do_not_hold_back_another_users_job(base, connection, local_system):
    customer = register(base, "slowpoke", local_system)
    with WebhookReceiver(204, delay_s=SLOW_RECEIVER_S) as slow:
        # Given three orders that end at once (no data) with a webhook to a receiver that takes 6 s to answer
        order_ids = []
        for _ in range(SLOW_ORDERS):
            response = customer.request("POST", "/services/ndvi-composite/orders", json={
                "parameters": {"area": SAHARA, **JUNE},
                "notify": {"email": False, "webhook_url": slow.url(host=ALLOWED_PRIVATE_HOST)}})
            assert response.status_code == 201, response.text
            order_ids.append(response.json()["order_id"])
        # and the webhook function already waiting on it
        deadline = time.monotonic() + 20
        while not slow.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert slow.received, "no webhook reached the receiver"
        first_webhook_at = time.monotonic()

        # When another user starts a small batch job
        job = connection.load_collection(COLLECTION, spatial_extent=TINY_BOX, temporal_extent=["2022-06-01",
                                                                                               "2022-06-05"],
                                         bands=["B04"]).save_result("GTiff").create_job(title="not held back")
        started = time.monotonic()
        job.start()
        status, seen = wait_for(job, statuses=("queued", "running", "finished", "error"), timeout=30)
        queued_after_s = time.monotonic() - started
        print(f"\nother user's job {' → '.join(seen)} {queued_after_s:.1f} s after its start, "
              f"{len(slow.received)} slow webhook(s) received so far")

        # Then it is queued at once, while the slow webhooks are still unanswered
        assert status != "error", seen
        assert queued_after_s < QUEUED_WITHIN_S
        assert time.monotonic() < first_webhook_at + SLOW_RECEIVER_S

        # and the orders' logs say in plain words that their receiver did not answer, and nothing else about it
        for order_id in order_ids:
            messages = {entry["message"] for entry in wait_for_webhook_log(customer, order_id)}
            assert NOT_ANSWERED in messages and messages <= {NOT_ANSWERED, "Webhook delivered (HTTP 204)."}
    job.delete()


def wait_for_webhook_log(customer, order_id: str, timeout_s: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        logs = customer.request("GET", f"/orders/{order_id}/logs").json()["logs"]
        webhook_logs = [entry for entry in logs if entry.get("code") == "WebhookDelivery"]
        if webhook_logs or time.monotonic() > deadline:
            assert webhook_logs, logs
            return webhook_logs
        time.sleep(0.25)
