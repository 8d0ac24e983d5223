"""Order-service orders, products and logging (under `/api/v1`): `/orders`, `/orders/{order_id}`,
`/orders/{order_id}/logs`, `/products`, `/logging`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from routers.openeo.context import openeo_url
from routers.orders.context import order_json_body, order_page_size, order_url, page
from routers.shared.caller import caller
from routers.shared.context import backend
from stratus.domain.lifecycle import ORDER_STATUSES, job_status_of_order
from stratus.errors import JobNotFinishedException
from stratus.events import JobStatus, isoformat_z
from stratus.order_errors import InvalidRequestException

if TYPE_CHECKING:
    from stratus.domain.orders import Order

router = Router()


def _query(name: str) -> str | None:
    return router.current_event.get_query_string_value(name, None) or None


def _results(order: Order) -> dict[str, Any] | None:
    """The results STAC Collection of a successful order (assets presigned), None when unavailable."""
    from stratus.domain import results

    try:
        return results.job_results(order.job, backend().results, openeo_url(router),
                                   backend().settings.presign_expiry_s)
    except JobNotFinishedException:
        return None


@router.get("/orders")
def list_orders() -> dict:
    from stratus.domain.orders import describe_order

    principal = caller(router)
    limit = order_page_size(router)
    wanted = _query("status")
    status = _status_filter(wanted)
    orders, next_token = backend().orders.list_orders(principal, limit, _query("after"),
                                                      customer_id=_query("customer_id"), status=status)
    if status is JobStatus.ERROR:  # FAILED and INVALID are both failed jobs: tell them apart
        orders = [o for o in orders if o.order_status == wanted.upper()]
    base, openeo = order_url(router), openeo_url(router)
    return page(router, "orders", [describe_order(o, base, openeo, full=False) for o in orders], next_token,
                "/orders", limit)


def _status_filter(raw: str | None) -> JobStatus | None:
    """`?status=` in order terms; INVALID and FAILED are both failed jobs (told apart per order)."""
    if raw is None:
        return None
    status = job_status_of_order(raw)
    if status is None:
        raise InvalidRequestException(reason=f"`status` must be one of {', '.join(ORDER_STATUSES)}")
    return status


@router.get("/orders/<order_id>")
def get_order(order_id: str) -> dict:
    from stratus.domain.orders import describe_order, result_links

    order = backend().orders.get_order(caller(router), order_id)
    stac = _results(order) if order.order_status == "SUCCESS" else None
    return describe_order(order, order_url(router), openeo_url(router), full=True,
                          results=result_links(stac) if stac is not None else
                          ([] if order.order_status == "SUCCESS" else None))


@router.delete("/orders/<order_id>")
def cancel_order(order_id: str) -> dict:
    from stratus.domain.orders import describe_order

    order = backend().orders.cancel_order(caller(router), order_id)
    return describe_order(order, order_url(router), openeo_url(router), full=False)


@router.get("/orders/<order_id>/logs")
def order_logs(order_id: str) -> dict:
    limit = order_page_size(router)
    level = _query("level")
    entries, more = backend().orders.order_logs(caller(router), order_id, level, _query("offset"),
                                                limit)
    links = []
    if more and entries:
        links.append({"rel": "next", "href": f"{order_url(router)}/orders/{order_id}/logs?limit={limit}"
                                             f"&offset={quote(entries[-1].log_id)}"
                                             + (f"&level={quote(level)}" if level else "")})
    return {"order_id": order_id, "level": (level or "debug").upper(),
            "logs": [_log_entry(e.to_openeo()) for e in entries], "links": links}


def _log_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """An openEO log entry with the order API's upper-case level and the reporting component on top."""
    entry = {**entry, "level": entry["level"].upper()}
    data = entry.get("data")
    if isinstance(data, dict) and isinstance(data.get("component"), str):  # the schema: a string or absent
        entry["component"] = data["component"]
    return entry


@router.get("/products")
def list_products() -> dict:
    from stratus.domain.orders import result_links

    principal = caller(router)
    limit = order_page_size(router)
    orders, next_token = backend().orders.list_orders(principal, limit, _query("after"),
                                                      customer_id=_query("customer_id"), status=JobStatus.FINISHED)
    base, openeo = order_url(router), openeo_url(router)
    products = []
    for order in orders:
        stac = _results(order)
        if stac is None:
            continue  # finished, but the results are gone
        products.append({
            "product_id": order.order_id,
            "order_id": order.order_id,
            "service": order.service_id,
            "title": order.job.title,
            "created": isoformat_z(order.job.created),
            "finished": isoformat_z(order.job.finished) if order.job.finished else None,
            "parameters": order.parameters,
            "downloads": result_links(stac),
            "stac": stac,
            "links": [{"rel": "order", "href": f"{base}/orders/{order.order_id}", "type": "application/json"},
                      {"rel": "results", "href": f"{openeo}/jobs/{order.order_id}/results",
                       "type": "application/json"}],
        })
    return page(router, "products", products, next_token, "/products", limit)


@router.post("/logging")
def submit_log() -> Response:
    event = backend().orders.submit_log(caller(router), order_json_body(router))
    return Response(status_code=202, content_type="application/json",
                    body=json.dumps({"order_id": event.job_id, "status": "accepted"}))
