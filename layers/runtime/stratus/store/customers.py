"""PynamoDB implementation of `CustomerOrders` (the jobs table's `user-jobs` index); the customers
themselves are accounts (`stratus.store.accounts`)."""

from __future__ import annotations

from datetime import datetime

from stratus.domain.customers import CustomerOrders, OrderSummary
from stratus.order_errors import InvalidRequestException
from stratus.store.dynamo import decode_page_token, encode_page_token
from stratus.store.models import JobModel


def _invalid_token() -> Exception:
    return InvalidRequestException(reason="`after` is not a page token of this listing")


def _to_order(item: JobModel) -> OrderSummary:
    return OrderSummary(order_id=item.job_id, service_id=item.service_id, job_status=item.status,
                        created=item.created, updated=item.updated, title=item.title, progress=item.progress,
                        error_code=item.error_code)


class DynamoCustomerOrders(CustomerOrders):
    def list_orders(self, user_id: str, limit: int, after: str | None) -> tuple[list[OrderSummary], str | None]:
        start_key = decode_page_token(after, {"job_id", "user_id", "created"}, _invalid_token,
                                      owner=("user_id", user_id)) if after else None
        query = JobModel.user_jobs.query(user_id, filter_condition=JobModel.service_id.exists(), limit=limit,
                                         page_size=limit, last_evaluated_key=start_key, scan_index_forward=False)
        orders = [_to_order(item) for item in query]
        return orders, encode_page_token(query.last_evaluated_key)

    def order_times(self, user_id: str, since: datetime | None = None) -> list[tuple[str, datetime]]:
        query = JobModel.user_jobs.query(
            user_id, range_key_condition=None if since is None else JobModel.created >= since,
            filter_condition=JobModel.service_id.exists(), attributes_to_get=["service_id", "created"])
        return [(item.service_id, item.created) for item in query]
