"""The order-service API (`/api/v1/`) end to end through the local system: real HTTP, the same job
machinery as openEO batch jobs (Step Functions → Batch as a local process → S3), the status manager
on SQS and the completion e-mail in the emulator's SES."""

from __future__ import annotations

import io
import re
import secrets
import time

import numpy as np
import pytest
import rasterio
import requests

from tests.receivers import ALLOWED_PRIVATE_HOST, WebhookReceiver

pytestmark = pytest.mark.e2e

BOLZANO = {"type": "Polygon", "coordinates": [[[11.325, 46.485], [11.35, 46.485], [11.35, 46.5], [11.325, 46.5],
                                               [11.325, 46.485]]]}
SAHARA = {"type": "Polygon", "coordinates": [[[10.0, 25.0], [10.05, 25.0], [10.05, 25.05], [10.0, 25.05],
                                              [10.0, 25.0]]]}
JUNE = {"start_date": "2022-06-01", "end_date": "2022-07-01"}
ORDER_TIMEOUT_S = 60


class Customer:
    def __init__(self, base: str, email: str, password: str, token: str, customer_id: str) -> None:
        self.base, self.email, self.password, self.token, self.customer_id = base, email, password, token, customer_id

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.base}/api/v1{path}", headers=headers, timeout=30, **kwargs)

    def order(self, service: str, parameters: dict, **kwargs) -> requests.Response:
        return self.request("POST", f"/services/{service}/orders", json={"parameters": parameters}, **kwargs)

    def wait(self, order_id: str, until=("SUCCESS", "FAILED", "INVALID", "CANCELLED")) -> tuple[dict, list[str]]:
        deadline, seen = time.monotonic() + ORDER_TIMEOUT_S, []
        while time.monotonic() < deadline:
            order = self.request("GET", f"/orders/{order_id}").json()
            if not seen or seen[-1] != order["status"]:
                seen.append(order["status"])
            if order["status"] in until:
                return order, seen
            time.sleep(0.05)
        pytest.fail(f"order {order_id} still {seen[-1]} after {ORDER_TIMEOUT_S} s (saw {seen})")


def register(base: str, name: str, local_system) -> Customer:
    """register → the verification e-mail (local SES inbox) → verify → token (client credentials), as a new
    customer would."""
    email, password = f"{name}-{secrets.token_hex(4)}@example.org", secrets.token_urlsafe(16)
    registered = requests.post(f"{base}/api/v1/auth/register", json={"name": name, "email": email,
                                                                     "password": password}, timeout=30)
    assert registered.status_code == 202, registered.text
    (message,) = inbox(local_system, email, order_mails=False)
    verification = re.search(r"Verification token: (\S+)", message["body"]).group(1)
    verified = requests.post(f"{base}/api/v1/auth/register/verify", json={"token": verification}, timeout=30)
    assert verified.status_code == 201, verified.text
    client = verified.json()
    token = requests.post(f"{base}/api/v1/auth/token", data={"grant_type": "client_credentials"},
                          auth=(client["client_id"], client["client_secret"]), timeout=30)
    assert token.status_code == 200, token.text
    assert token.headers["Cache-Control"] == "no-store"
    return Customer(base, email, password, token.json()["access_token"], client["customer_id"])


@pytest.fixture(scope="module")
def base(local_system):
    return local_system.api_url


@pytest.fixture(scope="module")
def admin(base, local_system):
    token = requests.post(f"{base}/api/v1/auth/token", data={
        "grant_type": "password", "username": "admin@stratus.example", "password": local_system.password}, timeout=30)
    assert token.status_code == 200, token.text
    return Customer(base, "admin@stratus.example", local_system.password, token.json()["access_token"], "")


def inbox(local_system, address: str, timeout_s: float = 15, order_mails: bool = True) -> list[dict]:
    """The e-mails to `address` (waiting up to `timeout_s` for one): order notices, or else the account mails."""
    deadline = time.monotonic() + timeout_s
    while True:
        messages = [m for m in requests.get(f"{local_system.endpoint_url}/_stratus/ses/messages",
                                            params={"to": address}, timeout=10).json()["messages"]
                    if order_mails != ("Verification token" in (m["body"] or ""))]
        if messages or time.monotonic() > deadline:
            return messages
        time.sleep(0.2)


def test_register_order_poll_download_and_get_the_email(base, local_system):
    # Given a newly registered customer
    customer = register(base, "ada", local_system)
    # When listing the services it may order
    services = {s["id"]: s for s in customer.request("GET", "/services").json()["services"]}
    assert {"ndvi-composite", "vegetation-change", "zonal-statistics"} <= set(services)
    assert "area" in {p["name"] for p in services["ndvi-composite"]["parameters"]}
    # And ordering a cloud-masked NDVI composite over Bolzano for June 2022
    started = time.monotonic()
    response = customer.order("ndvi-composite", {"area": BOLZANO, **JUNE})
    assert response.status_code == 201, response.text
    order_id = response.json()["order_id"]
    assert response.json()["status"] == "QUEUED"  # started at once
    assert response.headers["Location"].endswith(f"/api/v1/orders/{order_id}")
    # Then polling sees it run and succeed
    order, seen = customer.wait(order_id)
    order_to_success_s = time.monotonic() - started
    print(f"\norder {order_id}: {' → '.join(seen)} in {order_to_success_s:.1f} s")
    assert order["status"] == "SUCCESS", order
    assert "RUNNING" in seen and seen.index("RUNNING") < seen.index("SUCCESS")
    assert order["finished"] and order["started"] and order["created"]
    # And the product is listed with presigned download links, and is an NDVI GeoTIFF
    products = {p["order_id"]: p for p in customer.request("GET", "/products").json()["products"]}
    (download,) = [d for d in products[order_id]["downloads"] if d["type"].startswith("image/tiff")]
    assert "X-Amz-Signature" in download["href"] and download["expires"]
    tif = requests.get(download["href"], timeout=30)
    assert tif.status_code == 200
    with rasterio.open(io.BytesIO(tif.content)) as dataset:
        ndvi = dataset.read(1, masked=True)
    assert ndvi.count() > 0 and -1 <= float(ndvi.min()) and float(ndvi.max()) <= 1
    assert float(np.ma.median(ndvi)) > 0.2  # vegetated valley in June
    # And the order is the customer's openEO batch job too
    jobs = requests.get(f"{base}/openeo/1.2/jobs", headers={"Authorization": f"Bearer basic//{customer.token}"},
                        timeout=30).json()["jobs"]
    assert order_id in {j["id"] for j in jobs}
    # And the completion e-mail arrived
    (mail,) = inbox(local_system, customer.email)
    assert order_id in mail["subject"] and "SUCCESS" in mail["subject"]


def test_an_area_without_data_ends_invalid_and_is_mailed_and_signed_to_the_webhook(base, local_system):
    from stratus.domain.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, verify

    customer = register(base, "grace", local_system)
    with WebhookReceiver(204) as receiver:  # addressed by its allow-listed name (tests/e2e/conftest.py)
        response = customer.request("POST", "/services/ndvi-composite/orders", json={
            "parameters": {"area": SAHARA, **JUNE},
            "notify": {"email": True, "webhook_url": receiver.url(host=ALLOWED_PRIVATE_HOST)}})
        # the answer shows the order as it is by then: its status event (invalid) may have been applied already
        assert response.status_code == 201 and response.json()["status"] in ("RECEIVED", "INVALID")
        order, seen = customer.wait(response.json()["order_id"])
        assert order["status"] == "INVALID" and "RUNNING" not in seen
        assert order["error_code"] == "NoDataAvailable" and order["status_reason"]
        (mail,) = inbox(local_system, customer.email)
        assert "INVALID" in mail["subject"]
        deadline = time.monotonic() + 15  # the webhook function delivers it from its own queue
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.1)
    # the webhook got the end, signed with the customer's own key, with an event id to drop repeats by
    ((headers, body),) = receiver.received
    secret = customer.request("GET", "/auth/webhook-secret").json()["webhook_secret"]
    assert verify(secret, body, headers[SIGNATURE_HEADER])
    assert b'"status":"INVALID"' in body and headers[EVENT_ID_HEADER].startswith("evt-")


def test_scope_and_usage_limit_refusals(base, admin, local_system):
    customer = register(base, "linus", local_system)
    # an admin revokes one service and limits another to one order per hour
    revoked = admin.request("DELETE", f"/auth/scopes/{customer.customer_id}/service:zonal-statistics")
    assert revoked.status_code == 200, revoked.text
    limited = admin.request("PATCH", f"/crm/customers/{customer.customer_id}",
                            json={"usage_limits": {"vegetation-change": {"limit": 1, "interval_s": 3600}}})
    assert limited.status_code == 200, limited.text
    # the revoked service is refused, and no longer listed
    refused = customer.order("zonal-statistics", {"area": BOLZANO, **JUNE})
    assert refused.status_code == 403 and refused.json()["code"] == "ScopeMissing"
    assert "zonal-statistics" not in {s["id"] for s in customer.request("GET", "/services").json()["services"]}
    # the limited service takes one order, then refuses with a clear error and Retry-After
    change = {"area": BOLZANO, "reference_start": "2022-06-01", "reference_end": "2022-06-16",
              "start_date": "2022-07-01", "end_date": "2022-07-16"}
    first = customer.order("vegetation-change", change)
    assert first.status_code == 201, first.text
    second = customer.order("vegetation-change", change)
    assert second.status_code == 429 and second.json()["code"] == "UsageLimitExceeded"
    assert "per 3600 s" in second.json()["message"] and int(second.headers["Retry-After"]) > 0
    customer.request("DELETE", f"/orders/{first.json()['order_id']}")


def test_cancel_and_other_customers_orders_are_invisible(base, local_system):
    owner, other = register(base, "barbara", local_system), register(base, "edsger", local_system)
    response = owner.order("ndvi-composite", {"area": BOLZANO, **JUNE}, headers={"Idempotency-Key": "once"})
    order_id = response.json()["order_id"]
    # the owner cancels it at once (processing takes seconds to start): it ends CANCELLED
    cancelled = owner.request("DELETE", f"/orders/{order_id}")
    assert cancelled.status_code == 200, cancelled.text
    order, seen = owner.wait(order_id)
    assert order["status"] == "CANCELLED", seen
    assert owner.request("DELETE", f"/orders/{order_id}").status_code == 200  # repeating is harmless
    # a retry with the same key is the same order, not a new one
    assert owner.order("ndvi-composite", {"area": BOLZANO, **JUNE},
                       headers={"Idempotency-Key": "once"}).json()["order_id"] == order_id
    # another customer neither reads, lists, cancels nor reads the logs of it
    for method, path in (("GET", f"/orders/{order_id}"), ("DELETE", f"/orders/{order_id}"),
                         ("GET", f"/orders/{order_id}/logs")):
        refused = other.request(method, path)
        assert refused.status_code == 404 and refused.json()["code"] == "OrderNotFound", (method, path)
    assert order_id not in {o["order_id"] for o in other.request("GET", "/orders").json()["orders"]}
    assert order_id in {o["order_id"] for o in owner.request("GET", "/orders").json()["orders"]}

