"""The jobs and users tables as seen by the order notifier and the webhook deliverer."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from stratus.domain.notifications import OrderEnd
from stratus.domain.orders import Order
from stratus.domain.webhooks import WebhookTarget
from stratus.store.models import JobModel, UserModel
from stratus.store.orders import order_from_item


def _order(order_id: str) -> tuple[Order, JobModel] | None:
    """The order and its job row (consistent read); None for a missing job or one that is no order."""
    try:
        item = JobModel.get(order_id, consistent_read=True)
    except DoesNotExist:
        return None
    order = order_from_item(item)
    return (order, item) if order is not None else None


class DynamoOrderEndStore:
    def order_end(self, order_id: str) -> OrderEnd | None:
        found = _order(order_id)
        if found is None:
            return None
        order, item = found
        try:
            customer = UserModel.get(order.job.user_id)
            email, name = customer.email, customer.name
        except DoesNotExist:  # deleted customer: nobody to tell
            email = name = None
        return OrderEnd(order=order, notified=item.notified, email=email, customer_name=name)

    def mark_notified(self, order_id: str, order_status: str) -> None:
        JobModel(order_id).update(actions=[JobModel.notified.set(order_status)])


class DynamoWebhookTargets:
    """The webhook function's view: the order's job row only (no customer data)."""

    def webhook_target(self, order_id: str) -> WebhookTarget | None:
        found = _order(order_id)
        if found is None:
            return None
        order, _ = found
        return WebhookTarget(order_id=order.order_id, customer_id=order.job.user_id, service_id=order.service_id,
                             webhook_url=order.notify.get("webhook_url"), reason=order.job.reason,
                             error_code=order.job.error_code)
