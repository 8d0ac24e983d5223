"""Telling customers that their order ended (SUCCESS, FAILED, INVALID, CANCELLED).

At least once and without repeats: the status manager asks after every end event; a notice goes out
while the order's `notified` status differs from its current one, and is marked sent afterwards. A
failure to send the e-mail fails the SQS record, whose retry sends again (the status itself is applied
already). The optional webhook is only enqueued here (ids only) and delivered by the webhook function
(`stratus.domain.webhooks`): a slow or unreachable receiver never holds back the status consumer. It is
enqueued before the e-mail goes out, so a retry repeats the webhook (receivers drop repeats by its event
id) rather than the e-mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from stratus.domain.lifecycle import ENDED
from stratus.domain.orders import Order
from stratus.domain.webhooks import WebhookDelivery, WebhookQueue, event_id
from stratus.events import isoformat_z, utcnow



@dataclass(frozen=True)
class OrderEnd:
    """An order with what telling its customer needs: the status told last and the customer's address."""

    order: Order
    notified: str | None  # the order status the customer was told about
    email: str | None
    customer_name: str | None


class OrderEndStore(Protocol):
    def order_end(self, order_id: str) -> OrderEnd | None:
        """The order with its customer's address; None if the job is not an order."""
        ...

    def mark_notified(self, order_id: str, order_status: str) -> None: ...


class EmailSender(Protocol):
    def send(self, to: str, subject: str, body: str) -> str: ...


class OrderNotifier:
    def __init__(self, store: OrderEndStore, email: EmailSender, webhooks: WebhookQueue | None = None) -> None:
        self._store = store
        self._email = email
        self._webhooks = webhooks

    def notify_if_ended(self, order_id: str) -> str | None:
        """Sends the notice of an ended order once; returns the order status told, or None."""
        end = self._store.order_end(order_id)
        if end is None:
            return None
        order, status = end.order, end.order.order_status
        if order.job.status not in ENDED or end.notified == status:
            return None
        if order.notify.get("webhook_url") and self._webhooks is not None:
            self._webhooks.send(WebhookDelivery(event_id=event_id(order_id, status), order_id=order_id,
                                                order_status=status, time=isoformat_z(utcnow())))
        if order.notify.get("email", True) and end.email:
            subject, body = compose_email(end)
            self._email.send(end.email, subject, body)
        self._store.mark_notified(order_id, status)
        return status


def compose_email(end: OrderEnd) -> tuple[str, str]:
    order, status = end.order, end.order.order_status
    greeting = f"Dear {end.customer_name}," if end.customer_name else "Hello,"
    outcome = {
        "SUCCESS": "has finished successfully. Its products are ready for download.",
        "FAILED": "has failed.",
        "INVALID": "cannot be processed with the inputs given and will not be retried.",
        "CANCELLED": "was cancelled.",
    }[status]
    lines = [greeting, "", f"your order {order.order_id} of the service '{order.service_id}' {outcome}"]
    if order.job.reason and status != "SUCCESS":
        lines += ["", f"Reason: {order.job.reason}"]
    lines += ["", f"Status and download links: GET /api/v1/orders/{order.order_id}", "", "-- Stratus"]
    return f"Stratus order {order.order_id}: {status}", "\n".join(lines)
