"""Per-request helpers of the order-service API (`/api/v1/`): scope checks, request bodies, page sizes
and pages with the order-service errors."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aws_lambda_powertools.event_handler.api_gateway import Router

from routers.shared.caller import caller
from routers.shared.context import json_body, page_size, root_url
from stratus import request_limits
from stratus.domain.principal import ADMIN_SCOPE, Principal
from stratus.order_errors import InvalidRequestException, ScopeMissingException

ORDER_PREFIX = "/api/v1"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # responses carrying tokens or secrets


def require_scope(principal: Principal, scope: str) -> None:
    """Raises ScopeMissing (403) unless the principal holds `scope`; admins hold every scope."""
    if not (principal.is_admin or scope in principal.scopes):
        raise ScopeMissingException(scope=scope)


def require_admin(router: Router) -> Principal:
    principal = caller(router)
    require_scope(principal, ADMIN_SCOPE)
    return principal


def order_url(router: Router) -> str:
    """The public URL of `/api/v1`, as the client reached it."""
    return root_url(router) + ORDER_PREFIX


def _invalid_request(reason: str) -> Exception:
    return InvalidRequestException(reason=reason)


def order_json_body(router: Router, max_bytes: int = request_limits.MAX_STORED_BODY_BYTES) -> dict[str, Any]:
    return json_body(router, invalid=_invalid_request, max_bytes=max_bytes)


def order_page_size(router: Router) -> int:
    """The `limit` query parameter of a list endpoint, capped like the openEO API's."""
    return page_size(router, invalid=_invalid_request, refuse_above_max=True)


def page(router: Router, key: str, items: list[Any], next_token: str | None, path: str, limit: int) -> dict[str, Any]:
    """A list response like the openEO API's: the items, `links` with a `next` link, and the bare
    `next` token (pass it as `after` to get the next page)."""
    links = []
    if next_token:
        links.append({"rel": "next", "href": f"{order_url(router)}{path}?limit={limit}&after={quote(next_token)}"})
    return {key: items, "links": links, "next": next_token}
