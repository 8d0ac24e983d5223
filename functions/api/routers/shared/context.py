"""Per-request helpers shared by both APIs' routers: the backend, headers, the public URL, JSON bodies and
page sizes (each API passes its own error for bad input)."""

from __future__ import annotations

import base64
import binascii
from functools import cache
from typing import Any, Callable

from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

from stratus import request_limits
from stratus.backend import Backend
from stratus.errors import BadRequestException

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000  # bounded so one request never reads a large table partition


@cache
def backend() -> Backend:
    """Built on first use, once per Lambda container (no I/O at import time)."""
    return Backend.from_env()


def header(router: BaseRouter, name: str) -> str | None:
    """A request header, whatever its case."""
    wanted = name.lower()
    return next((value for key, value in (router.current_event.headers or {}).items() if key.lower() == wanted),
                None)


def client_address(router: BaseRouter) -> str:
    """The caller's IP address as API Gateway saw it (for per-client rate limits)."""
    identity = (router.current_event.raw_event.get("requestContext") or {}).get("identity") or {}
    return identity.get("sourceIp") or "unknown"


def root_url(router: BaseRouter) -> str:
    """The public URL of the API root, as the client reached it (custom domain or stage URL)."""
    event = router.current_event
    headers = {k.lower(): v for k, v in (event.headers or {}).items()}
    host = headers.get("x-forwarded-host") or headers.get("host") or "localhost"
    proto = headers.get("x-forwarded-proto", "https")
    request_path = event.request_context.path or event.path
    stage_prefix = request_path[: len(request_path) - len(event.path)] if request_path.endswith(event.path) else ""
    return f"{proto}://{host}{stage_prefix}"


def _bad_request(reason: str) -> Exception:
    return BadRequestException(reason=reason)


def json_body(router: BaseRouter, invalid: Callable[[str], Exception] = _bad_request,
              max_bytes: int = request_limits.MAX_STORED_BODY_BYTES) -> dict[str, Any]:
    """The request's JSON object, within `max_bytes` and `request_limits.MAX_JSON_DEPTH`; `invalid(reason)`
    is the error raised otherwise (the API's own kind)."""
    event = router.current_event
    try:
        raw = base64.b64decode(event.body or "") if event.is_base64_encoded else event.body
        body = request_limits.parse_json_body(raw, max_bytes)
    except binascii.Error:
        raise invalid("the request body is not valid JSON") from None
    except request_limits.BodyRefused as refused:
        raise invalid(str(refused)) from None
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    return body


def page_size(router: BaseRouter, invalid: Callable[[str], Exception] = _bad_request, refuse_above_max: bool = False) -> int:
    """The `limit` query parameter of a list endpoint (openEO pagination), capped at `MAX_PAGE_SIZE` (or, with
    `refuse_above_max`, refused above it: the order API documents the maximum)."""
    raw = router.current_event.get_query_string_value("limit", None)
    if raw is None:
        return DEFAULT_PAGE_SIZE
    try:
        limit = int(raw)
    except ValueError:
        raise invalid("`limit` must be a positive integer") from None
    if limit < 1:
        raise invalid("`limit` must be a positive integer")
    if refuse_above_max and limit > MAX_PAGE_SIZE:
        raise invalid(f"`limit` must be at most {MAX_PAGE_SIZE}")
    return min(limit, MAX_PAGE_SIZE)
