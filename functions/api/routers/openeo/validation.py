"""Process validation: `POST /validation`."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from routers.shared.caller import caller
from routers.shared.context import backend, json_body
from stratus import request_limits

router = Router()


@router.post("/validation")
def validate_process_graph() -> dict:
    """Always 200: an invalid process is reported as a list of errors, all of them at once."""
    from stratus.domain.validation import validate_process

    user_id = caller(router).user_id
    process = json_body(router, max_bytes=request_limits.MAX_PROCESSED_BODY_BYTES)
    errors = validate_process(process, backend().user_processes.lookup_for(user_id),
                              collection_exists=backend().catalog.has_collection)
    return {"errors": [{"code": error.code, "message": error.message} for error in errors]}
