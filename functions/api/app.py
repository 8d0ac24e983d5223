"""API Lambda: the openEO API v1.2 (`/openeo/1.2/`) and the order-service API (`/api/v1/`) behind API
Gateway (REST, proxy integration).

Only wiring lives here: each API's routes are in `routers/openeo/` and `routers/orders/`, what both share
(errors, request checks, the caller middleware, request helpers) in `routers/shared/`. Heavy imports
(rasterio, numpy, xarray) are never made in this function: it must cold-start fast. For the same reason a route
imports the domain modules only it needs (results, orders, estimates, ...) inside its handler
(`tests/unit/test_api_cold_start.py`, `benchmarks/api_cold_start.py`).
"""

# boto3 first, at the top of the import stack: imported six modules deep (via the routers and `stratus.aws`), it
# made CPython map and unmap a 16 KiB frame-stack chunk about 1,450 times (~10 ms of system time, python 3.11)
import boto3  # noqa: F401
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from routers.openeo import (
    account,
    capabilities,
    collections,
    credentials,
    files,
    jobs,
    process_graphs,
    processing,
    validation,
    web_services,
)
from routers.openeo.caller import openeo_caller
from routers.openeo.context import OPENEO_PREFIX
from routers.orders import auth, crm, docs, offerings, orders
from routers.orders.caller import order_caller
from routers.orders.context import ORDER_PREFIX
from routers.shared import errors, request_guard
from routers.shared.caller import caller_middleware
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
# after the request guard: ids that cannot be ours are 404 before anyone is looked up
app.use(middlewares=[caller_middleware({OPENEO_PREFIX: openeo_caller, ORDER_PREFIX: order_caller})])
app.include_router(capabilities.well_known)
for area in (capabilities, credentials, account, collections, processing, jobs, process_graphs, validation, files,
             web_services):
    app.include_router(area.router, prefix=OPENEO_PREFIX)
for order_area in (auth, crm, offerings, orders, docs):
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
