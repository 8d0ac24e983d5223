"""API Lambda: the openEO API v1.2 behind API Gateway (REST, proxy integration).

Only wiring lives here; each area's routes are in `routers/`. Heavy imports (rasterio, numpy,
xarray) are never made in this function: it must cold-start fast.
"""

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from routers import (
    account,
    capabilities,
    collections,
    credentials,
    errors,
    files,
    jobs,
    process_graphs,
    processing,
    request_guard,
    validation,
)
from routers import order_auth, order_crm
from routers import order_docs, order_orders, order_services
from routers.context import OPENEO_PREFIX
from routers.order_context import ORDER_PREFIX
from stratus.observability import logger, tracer

cors = CORSConfig(
    allow_origin="*",
    allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
    expose_headers=["Location", "OpenEO-Identifier", "OpenEO-Costs", "Link", "Retry-After"],
    max_age=3600,
)
app = APIGatewayRestResolver(cors=cors)
errors.register(app)
request_guard.register(app, errors.openeo_error_response)
app.include_router(capabilities.well_known)
for area in (capabilities, credentials, account, collections, processing, jobs, process_graphs, validation, files):
    app.include_router(area.router, prefix=OPENEO_PREFIX)
# the order-service API (`/api/v1/`)
for order_area in (order_auth, order_crm, order_services, order_orders, order_docs):
    app.include_router(order_area.router, prefix=ORDER_PREFIX)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(without_doubled_slash(event), context)


def without_doubled_slash(event: dict) -> dict:
    """Routes `/openeo/1.2//jobs` like `/openeo/1.2/jobs`: clients that join the API's URL, which ends in "/",
    with a path starting with one (the official openeo-test-suite does) still reach the API. Only there: in
    the rest of the path an empty segment stays an error (e.g. a file path `a//b`)."""
    path, base = event.get("path") or "", f"{OPENEO_PREFIX}/"
    if not path.startswith(f"{base}/"):
        return event
    return {**event, "path": base + path[len(base):].lstrip("/")}
