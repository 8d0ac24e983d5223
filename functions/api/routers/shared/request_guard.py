"""Checks every request makes before (and instead of) a route: ids in the path that cannot be ours
are answered 404 before they reach DynamoDB or S3, and a method a resource does not support is
answered 405 with `Allow` (not 404), both in the API's error format."""

from __future__ import annotations

from typing import Any, Callable
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from routers.openeo.context import OPENEO_PREFIX
from stratus.errors import NotFoundException, OpenEOApiException
from stratus.request_limits import plausible_id

# Workspace paths have their own, longer rules (`stratus.domain.files.validate_path`).
_FILES_PREFIX = f"{OPENEO_PREFIX}/files/"
_MAX_FILES_PATH_BYTES = 2048


class MethodNotAllowedException(OpenEOApiException):
    status_code, code, message_template = 405, "MethodNotAllowed", "The method {method} is not allowed here."


def register(app: APIGatewayRestResolver, error_response: Callable[[OpenEOApiException], Response]) -> None:
    def refuse_implausible_ids(app: APIGatewayRestResolver, next_middleware: Callable[..., Any]) -> Any:
        path = app.current_event.path or ""
        if path.startswith(_FILES_PREFIX):
            if len(path.encode("utf-8", "surrogatepass")) > _MAX_FILES_PATH_BYTES:
                raise NotFoundException()
        elif not all(plausible_id(unquote(segment)) for segment in path.split("/") if segment):
            raise NotFoundException()
        return next_middleware(app)

    app.use(middlewares=[refuse_implausible_ids])

    def allowed_methods(path: str) -> list[str]:
        routes = app._static_routes + app._dynamic_routes  # noqa: SLF001 (Powertools keeps no public list)
        return sorted({route.method for route in routes if route.rule.match(path)})

    @app.not_found
    def handle_not_found(_: Exception) -> Response:
        method = app.current_event.http_method.upper()
        allowed = allowed_methods(app.current_event.path or "")
        if allowed and method not in allowed:
            response = error_response(MethodNotAllowedException(method=method))
            response.headers["Allow"] = ", ".join(allowed + ["OPTIONS"])
            return response
        return error_response(NotFoundException())
