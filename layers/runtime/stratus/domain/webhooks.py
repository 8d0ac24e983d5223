"""Signed order webhooks: when an order ends, a JSON notice is POSTed to the URL given with the order,
signed like GitHub's and Stripe's webhooks (HMAC-SHA256 of the raw body, hex, in a header).

Each customer has their own signing secret, derived from the deployment's key (HMAC of the customer
id), so nothing extra is stored and `GET /api/v1/auth/webhook-secret` can show it to its customer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Callable

SIGNATURE_HEADER = "X-Stratus-Signature"
EVENT_HEADER = "X-Stratus-Event"
ORDER_ENDED_EVENT = "order.ended"


def customer_webhook_secret(master_key: str, customer_id: str) -> str:
    return hmac.new(master_key.encode(), f"webhook:{customer_id}".encode(), hashlib.sha256).hexdigest()


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header_value: str) -> bool:
    """What a receiver does (also used by our tests)."""
    return hmac.compare_digest(signature(secret, body), header_value or "")


class WebhookSender:
    """POSTs signed notices with urllib (no extra dependency); `attempts` quick tries, then gives up."""

    def __init__(self, master_key: Callable[[], str], *, timeout_s: float = 5.0, attempts: int = 3) -> None:
        self._master_key = master_key
        self._timeout_s = timeout_s
        self._attempts = attempts

    def post(self, url: str, customer_id: str, payload: dict[str, Any]) -> int:
        """Returns the receiver's (last) HTTP status; raises `OSError` when it could never be reached."""
        import urllib.error
        import urllib.request

        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        secret = customer_webhook_secret(self._master_key(), customer_id)
        headers = {"Content-Type": "application/json", "User-Agent": "Stratus-Webhook/1",
                   SIGNATURE_HEADER: signature(secret, body), EVENT_HEADER: ORDER_ENDED_EVENT}
        last_error: OSError | None = None
        last_status: int | None = None
        for _ in range(self._attempts):
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self._timeout_s) as response:  # noqa: S310
                    return response.status
            except urllib.error.HTTPError as error:
                if error.code < 500:
                    return error.code  # the receiver refused it: trying again would not help
                last_status = error.code
            except OSError as error:
                last_error = error
        if last_status is not None:
            return last_status
        raise last_error or OSError("webhook not delivered")
