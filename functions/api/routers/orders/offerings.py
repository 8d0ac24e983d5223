"""What customers can order, and ordering it: `/services`, `/services/{service_id}`,
`/services/{service_id}/orders` (under `/api/v1`).

The API calls them services; this module calls them offerings, so that "service" in code keeps meaning a
class such as `JobService` (the domain model is still `stratus.domain.services`)."""

from __future__ import annotations

import json

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router

from routers.openeo.context import openeo_url
from routers.orders.context import order_json_body, order_url
from routers.shared.caller import caller
from routers.shared.context import backend, header
from stratus import request_limits, resources
from stratus.order_errors import UsageLimitExceededException

router = Router()


def _json(status: int, body: dict, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body),
                    headers=headers or {})


@router.get("/services")
def list_services() -> dict:
    from stratus.domain.services import describe_service

    principal = caller(router)
    services = backend().services.visible_to(principal)
    base = order_url(router)
    limits = backend().orders.usage_limits(principal.user_id, services)
    return {"services": [describe_service(s, principal, base, full=False, usage_limit=limits[s.service_id])
                         for s in services],
            "links": [{"rel": "self", "href": f"{base}/services", "type": "application/json"}]}


@router.get("/services/<service_id>")
def describe(service_id: str) -> dict:
    from stratus.domain.services import describe_service

    principal = caller(router)
    service = backend().services.get_visible(principal, service_id)
    return describe_service(service, principal, order_url(router), full=True,
                            usage_limit=backend().orders.usage_limit(principal.user_id, service))


@router.put("/services/<service_id>")
def publish(service_id: str) -> Response:
    from stratus.domain.services import describe_service

    principal = caller(router)
    service, created = backend().services.publish(principal, service_id, order_json_body(router))
    document = describe_service(service, principal, order_url(router), full=True)
    headers = {"Location": f"{order_url(router)}/services/{service_id}"} if created else None
    return _json(201 if created else 200, document, headers)


@router.delete("/services/<service_id>")
def withdraw(service_id: str) -> dict:
    from stratus.domain.services import describe_service

    principal = caller(router)
    service = backend().services.withdraw(principal, service_id)
    return describe_service(service, principal, order_url(router), full=False)


@router.post("/services/<service_id>/estimate")
def estimate(service_id: str) -> dict:
    """An order's area, validity and costs before it is placed (nothing is stored or started)."""
    from stratus.domain.order_estimate import estimate_order

    b = backend()
    return estimate_order(b.services, caller(router), service_id,
                          order_json_body(router, max_bytes=request_limits.MAX_ORDER_BODY_BYTES),
                          catalog=b.dry_run_catalog, cost_model=b.cost_model,
                          max_area_km2=resources.ORDER_MAX_AREA_KM2, currency=resources.BILLING_CURRENCY)


@router.post("/services/<service_id>/orders")
def place_order(service_id: str) -> Response:
    from stratus.domain.orders import describe_order

    principal = caller(router)
    body = order_json_body(router, max_bytes=request_limits.MAX_ORDER_BODY_BYTES)
    try:
        order, created = backend().orders.place_order(principal, service_id, body,
                                                      header(router, "Idempotency-Key"))
    except UsageLimitExceededException as error:
        return _json(error.status_code, error.to_dict(), {"Retry-After": str(error.params["retry_after_s"])})
    base = order_url(router)
    location = f"{base}/orders/{order.order_id}"
    document = describe_order(order, base, openeo_url(router), full=False)
    return _json(201 if created else 200, document, {"Location": location, "OpenEO-Identifier": order.order_id})
