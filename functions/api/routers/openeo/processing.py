"""Data processing: synchronous `POST /result`."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router

from routers.shared.caller import caller
from routers.shared.context import backend, json_body
from stratus import request_limits

router = Router()


@router.post("/result")
def compute_result() -> Response:
    result = backend().sync_processing.process(caller(router).user_id, json_body(router, max_bytes=request_limits.MAX_PROCESSED_BODY_BYTES))
    if result.redirect_url:
        # too large for a Lambda response: the client follows the redirect to S3
        return Response(status_code=303, headers={"Location": result.redirect_url}, body="")
    body = result.body
    if isinstance(body, bytes) and result.media_type.startswith(content_types.APPLICATION_JSON):
        body = body.decode()  # already JSON: Powertools would serialize a non-str JSON body once more
    return Response(status_code=200, content_type=result.media_type, body=body)
