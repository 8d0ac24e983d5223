"""The jobs and users tables as seen by the order notifier and the webhook deliverer."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from stratus.domain.notifications import OrderEnd
from stratus.domain.webhooks import WebhookTarget
from stratus.events import JobStatus
from stratus.store.models import JobModel, UserModel


def _order_row(order_id: str) -> JobModel | None:
    """The job row of an order (consistent read); None for a missing job or one that is no order."""
    try:
        job = JobModel.get(order_id, consistent_read=True)
    except DoesNotExist:
        return None
    return job if job.service_id else None


class DynamoOrderEndStore:
    def order_end(self, order_id: str) -> OrderEnd | None:
        job = _order_row(order_id)
        if job is None:
            return None
        try:
            customer = UserModel.get(job.user_id)
            email, name = customer.email, customer.name
        except DoesNotExist:  # deleted customer: nobody to tell
            email = name = None
        return OrderEnd(order_id=job.job_id, customer_id=job.user_id, service_id=job.service_id, status=JobStatus(job.status),
                        error_code=job.error_code, reason=job.reason, notified=job.notified, email=email,
                        customer_name=name, notify=(job.order or {}).get("notify") or {})

    def mark_notified(self, order_id: str, order_status: str) -> None:
        JobModel(order_id).update(actions=[JobModel.notified.set(order_status)])


class DynamoWebhookTargets:
    """The webhook function's view: the order's job row only (no customer data)."""

    def webhook_target(self, order_id: str) -> WebhookTarget | None:
        job = _order_row(order_id)
        if job is None:
            return None
        notify = (job.order or {}).get("notify") or {}
        return WebhookTarget(order_id=job.job_id, customer_id=job.user_id, service_id=job.service_id,
                             webhook_url=notify.get("webhook_url"), reason=job.reason, error_code=job.error_code)
