"""PynamoDB implementation of `OrderRepository`: orders are rows of the jobs table with a `service_id`
(so the job machinery, the status consumer and the openEO API see them as jobs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError

from stratus.domain.orders import Order, OrderRepository
from stratus.events import JobStatus
from stratus.order_errors import InvalidRequestException
from stratus.store.dynamo import decode_page_token, encode_page_token, is_condition_failure
from stratus.store.jobs import item_from_job, job_from_item
from stratus.store.models import JobModel, UserModel


def _invalid_token() -> Exception:
    return InvalidRequestException(reason="`after` is not a page token of this listing")


def order_from_item(item: JobModel) -> Order | None:
    """The order of a job row; None when the job is no order."""
    if not item.service_id:
        return None
    return Order.from_document(job_from_item(item), item.service_id, item.order)


def _to_order(item: JobModel) -> Order:
    order = order_from_item(item)
    assert order is not None, "listings filter on service_id"
    return order


def _filter(status: JobStatus | None):
    condition = JobModel.service_id.exists()
    if status is not None:
        condition &= JobModel.status == status.value
    return condition


class DynamoOrderRepository(OrderRepository):
    def add(self, order: Order) -> bool:
        item = item_from_job(order.job)
        item.service_id, item.order = order.service_id, order.document()
        try:
            item.save(condition=JobModel.job_id.does_not_exist())
            return True
        except PutError as error:
            if is_condition_failure(error):
                return False
            raise

    def get(self, order_id: str) -> Order | None:
        try:
            item = JobModel.get(order_id, consistent_read=True)
        except DoesNotExist:
            return None
        return order_from_item(item)

    def list_for_user(self, user_id: str, limit: int, after: str | None,
                      status: JobStatus | None = None) -> tuple[list[Order], str | None]:
        start_key = decode_page_token(after, {"job_id", "user_id", "created"}, _invalid_token,
                                      owner=("user_id", user_id)) if after else None
        query = JobModel.user_jobs.query(user_id, filter_condition=_filter(status), limit=limit, page_size=limit,
                                         last_evaluated_key=start_key, scan_index_forward=False)
        orders = [_to_order(item) for item in query]
        return orders, encode_page_token(query.last_evaluated_key)

    def list_all(self, limit: int, after: str | None,
                 status: JobStatus | None = None) -> tuple[list[Order], str | None]:
        """Admins' view: a scan (orders of every customer, in no particular order)."""
        start_key = decode_page_token(after, {"job_id"}, _invalid_token) if after else None
        scan = JobModel.scan(filter_condition=_filter(status), limit=limit, page_size=limit,
                             last_evaluated_key=start_key)
        orders = [_to_order(item) for item in scan]
        return orders, encode_page_token(scan.last_evaluated_key)

    def created_since(self, user_id: str, service_id: str, since: datetime) -> list[datetime]:
        query = JobModel.user_jobs.query(user_id, range_key_condition=JobModel.created >= since,
                                         filter_condition=JobModel.service_id == service_id,
                                         attributes_to_get=["job_id", "user_id", "created"])
        return [item.created for item in query]

    def usage_limits(self, user_id: str) -> dict[str, Any]:
        try:
            item = UserModel.get(user_id, attributes_to_get=["user_id", "usage_limits"])
        except DoesNotExist:
            return {}
        return item.usage_limits or {}
