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
    validation,
)
from routers.context import OPENEO_PREFIX
from stratus.observability import logger, tracer

cors = CORSConfig(
    allow_origin="*",
    allow_headers=["Authorization", "Content-Type"],
    expose_headers=["Location", "OpenEO-Identifier", "OpenEO-Costs", "Link"],
    max_age=3600,
)
app = APIGatewayRestResolver(cors=cors)
errors.register(app)
app.include_router(capabilities.well_known)
for area in (capabilities, credentials, account, collections, processing, jobs, process_graphs, validation, files):
    app.include_router(area.router, prefix=OPENEO_PREFIX)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
