"""Every error leaves the API in the openEO error format (`id`, `code`, `message`, `links`)."""

from __future__ import annotations

import json

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

from stratus.errors import InternalException, OpenEOApiException
from stratus.observability import logger


def openeo_error_response(error: OpenEOApiException) -> Response:
    """Also for the order-service errors (same body); a refusal with `retry_after_s` (429) says when to retry."""
    retry_after = error.params.get("retry_after_s")
    return Response(status_code=error.status_code, content_type=content_types.APPLICATION_JSON,
                    body=json.dumps(error.to_dict()),
                    headers={"Retry-After": str(retry_after)} if retry_after is not None else None)


def register(app: APIGatewayRestResolver) -> None:
    @app.exception_handler(OpenEOApiException)
    def handle_openeo_error(error: OpenEOApiException) -> Response:
        logger.info("request refused", extra={"code": error.code, "error_id": error.id})
        return openeo_error_response(error)

    @app.exception_handler(Exception)
    def handle_unexpected(error: Exception) -> Response:
        internal = InternalException(message="Server error: an unexpected error occurred; see the log for its id.")
        logger.exception("unexpected error", extra={"error_id": internal.id})
        return openeo_error_response(internal)
