"""Customer management for admins (scope "admin"): `/crm/customers`, `/crm/customers/{id}`, its
deactivation, orders and usage. Mounted under `/api/v1`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler.api_gateway import Router

from routers.orders.context import order_json_body, order_page_size, order_url, page, require_admin
from routers.shared.context import backend
from stratus.domain.lifecycle import order_status
from stratus.events import JobStatus, isoformat_z

if TYPE_CHECKING:
    from stratus.domain.customers import OrderSummary

router = Router()


def order_summary(order: OrderSummary, base_url: str) -> dict[str, Any]:
    """An order in a customer's CRM listing; `GET /orders/{order_id}` (admins may) has the details."""
    try:
        status = order_status(JobStatus(order.job_status), order.error_code)
    except (ValueError, KeyError):
        status = None
    return {
        "order_id": order.order_id,
        "service_id": order.service_id,
        "status": status,
        "job_status": order.job_status,
        "title": order.title,
        "progress": order.progress,
        "error_code": order.error_code,
        "created": isoformat_z(order.created) if order.created else None,
        "updated": isoformat_z(order.updated) if order.updated else None,
        "links": [{"rel": "self", "href": f"{base_url}/orders/{order.order_id}"}],
    }


@router.get("/crm/customers")
def list_customers() -> dict:
    require_admin(router)
    limit = order_page_size(router)
    event = router.current_event
    customers, next_token = backend().customers.list_customers(
        limit, event.get_query_string_value("after", None), email=event.get_query_string_value("email", None))
    return page(router, "customers", [c.describe() for c in customers], next_token, "/crm/customers", limit)


@router.get("/crm/customers/<customer_id>")
def describe_customer(customer_id: str) -> dict:
    require_admin(router)
    return backend().customers.get(customer_id).describe()


@router.patch("/crm/customers/<customer_id>")
def update_customer(customer_id: str) -> dict:
    require_admin(router)
    return backend().customers.update(customer_id, order_json_body(router)).describe()


@router.post("/crm/customers/<customer_id>/deactivate")
def deactivate_customer(customer_id: str) -> dict:
    require_admin(router)
    return backend().customers.deactivate(customer_id).describe()


@router.get("/crm/customers/<customer_id>/orders")
def list_customer_orders(customer_id: str) -> dict:
    require_admin(router)
    limit = order_page_size(router)
    orders, next_token = backend().customers.orders(
        customer_id, limit, router.current_event.get_query_string_value("after", None))
    base = order_url(router)
    return page(router, "orders", [order_summary(o, base) for o in orders], next_token,
                f"/crm/customers/{customer_id}/orders", limit)


@router.get("/crm/customers/<customer_id>/usage")
def customer_usage(customer_id: str) -> dict:
    require_admin(router)
    return backend().customers.usage(customer_id)
