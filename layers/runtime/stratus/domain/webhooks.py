"""Signed order webhooks: when an order ends, a JSON notice is POSTed to the URL given with the order,
signed like GitHub's and Stripe's webhooks (HMAC-SHA256 of the raw body, hex, in a header).

Each customer has their own signing secret, derived from the deployment's key (HMAC of the customer
id), so nothing extra is stored and `GET /api/v1/auth/webhook-secret` can show it to its customer.

Delivery is at least once, from a queue of its own (never inside the status consumer: a slow receiver
must not hold back anyone's status). The status consumer enqueues a `WebhookDelivery` (ids only) when
an order ends; `WebhookDeliverer` re-checks the URL (DNS may have changed since the order), POSTs
within a time budget and tells its caller whether SQS should try again later. The event id is the
same for every repeat of one order end (header `X-Stratus-Event-Id`, field `event_id`), so receivers
can drop repeats. The order's log gets one generic entry per attempt, never a network error's text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

from stratus import events as event_types  # its models load on first use
from stratus.events import LogLevel

if TYPE_CHECKING:  # the pydantic event models load when an event is made (`stratus.events`)
    from stratus.events import LogEvent

SIGNATURE_HEADER = "X-Stratus-Signature"
EVENT_HEADER = "X-Stratus-Event"
EVENT_ID_HEADER = "X-Stratus-Event-Id"
ORDER_ENDED_EVENT = "order.ended"
USER_AGENT = "Stratus-Webhook/1"
RETRYABLE_STATUSES = frozenset({408, 425, 429})  # besides 5xx: the receiver may accept it later


def customer_webhook_secret(master_key: str, customer_id: str) -> str:
    return hmac.new(master_key.encode(), f"webhook:{customer_id}".encode(), hashlib.sha256).hexdigest()


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header_value: str) -> bool:
    """What a receiver does (also used by our tests)."""
    return hmac.compare_digest(signature(secret, body), header_value or "")


def event_id(order_id: str, order_status: str) -> str:
    """The same for every repeat of one order end."""
    return "evt-" + hashlib.sha256(f"{ORDER_ENDED_EVENT}\x00{order_id}\x00{order_status}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class WebhookDelivery:
    """A message of the webhooks queue: which order end to tell (ids only, no URL, no data)."""

    event_id: str
    order_id: str
    order_status: str
    time: str  # when the end was told, RFC 3339

    def to_json(self) -> str:
        return json.dumps({"event_id": self.event_id, "order_id": self.order_id, "order_status": self.order_status,
                           "time": self.time}, separators=(",", ":"))

    @classmethod
    def from_json(cls, body: str) -> WebhookDelivery:
        data = json.loads(body)
        return cls(event_id=str(data["event_id"]), order_id=str(data["order_id"]),
                   order_status=str(data["order_status"]), time=str(data["time"]))


@dataclass(frozen=True)
class WebhookTarget:
    """What the deliverer reads of the order."""

    order_id: str
    customer_id: str
    service_id: str
    webhook_url: str | None
    reason: str | None
    error_code: str | None


class WebhookTargets(Protocol):
    def webhook_target(self, order_id: str) -> WebhookTarget | None:
        """None when the order is gone."""
        ...


class WebhookQueue(Protocol):
    def send(self, delivery: WebhookDelivery) -> None: ...


class OrderLog(Protocol):
    def log(self, event: LogEvent) -> None: ...


class NotPublicTarget(Exception):
    """The URL's host does not resolve to a public address (or not at all)."""


class ReceiverUnreachable(Exception):
    """No HTTP answer: `timed_out` when the receiver stalled."""

    def __init__(self, timed_out: bool) -> None:
        super().__init__("the receiver did not answer in time" if timed_out else "the receiver could not be reached")
        self.timed_out = timed_out


class WebhookPoster(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """The receiver's HTTP status (redirects are not followed); raises `NotPublicTarget` or
        `ReceiverUnreachable`."""
        ...


@dataclass(frozen=True)
class DeliveryOutcome:
    delivered: bool
    retry_in_s: int | None = None  # try again after this long (the SQS record fails)
    gave_up: bool = False  # the last attempt failed: the record fails once more, into the DLQ

    @property
    def record_failed(self) -> bool:
        return self.retry_in_s is not None or self.gave_up


DELIVERED = DeliveryOutcome(delivered=True)
DROPPED = DeliveryOutcome(delivered=False)


class WebhookDeliverer:
    def __init__(self, targets: WebhookTargets, poster: WebhookPoster, master_key: Callable[[], str],
                 order_log: OrderLog, *, max_attempts: int, retry_delay_s: int) -> None:
        self._targets = targets
        self._poster = poster
        self._master_key = master_key
        self._order_log = order_log
        self._max_attempts = max_attempts
        self._retry_delay_s = retry_delay_s

    def deliver(self, delivery: WebhookDelivery, attempt: int) -> DeliveryOutcome:
        """Attempt number `attempt` (1-based: the SQS receive count) of one notice."""
        target = self._targets.webhook_target(delivery.order_id)
        if target is None or not target.webhook_url:
            return DROPPED
        body = notice_body(delivery, target)
        secret = customer_webhook_secret(self._master_key(), target.customer_id)
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, EVENT_HEADER: ORDER_ENDED_EVENT,
                   EVENT_ID_HEADER: delivery.event_id, SIGNATURE_HEADER: signature(secret, body)}
        try:
            status = self._poster.post(target.webhook_url, body, headers)
        except NotPublicTarget:
            self._log(delivery, LogLevel.WARNING, "Webhook not sent: the URL's host is not a public address.")
            return DROPPED
        except ReceiverUnreachable as error:
            return self._failed(delivery, attempt, str(error))
        if 200 <= status < 300:
            self._log(delivery, LogLevel.INFO, f"Webhook delivered (HTTP {status}).")
            return DELIVERED
        if status >= 500 or status in RETRYABLE_STATUSES:
            return self._failed(delivery, attempt, f"the receiver did not accept it (HTTP {status})")
        problem = "answered with a redirect, which is not followed" if 300 <= status < 400 else "refused it"
        self._log(delivery, LogLevel.WARNING, f"Webhook not delivered: the receiver {problem} (HTTP {status}).")
        return DROPPED

    def _failed(self, delivery: WebhookDelivery, attempt: int, problem: str) -> DeliveryOutcome:
        if attempt >= self._max_attempts:
            self._log(delivery, LogLevel.ERROR, f"Webhook delivery failed after {attempt} attempts: {problem}.")
            return DeliveryOutcome(delivered=False, gave_up=True)
        self._log(delivery, LogLevel.WARNING, f"Webhook not delivered: {problem}; retrying.")
        return DeliveryOutcome(delivered=False, retry_in_s=self._retry_delay_s * 2 ** (attempt - 1))

    def _log(self, delivery: WebhookDelivery, level: LogLevel, message: str) -> None:
        self._order_log.log(event_types.LogEvent(job_id=delivery.order_id, level=level, message=message,
                                                 code="WebhookDelivery"))


def notice_body(delivery: WebhookDelivery, target: WebhookTarget) -> bytes:
    """The same bytes for every attempt of one notice."""
    payload: dict[str, Any] = {
        "event": ORDER_ENDED_EVENT, "event_id": delivery.event_id, "order_id": delivery.order_id,
        "service": target.service_id, "status": delivery.order_status, "status_reason": target.reason,
        "error_code": target.error_code, "time": delivery.time, "href": f"/api/v1/orders/{delivery.order_id}"}
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
