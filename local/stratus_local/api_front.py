"""The local stand-in for API Gateway: a WSGI app that turns HTTP requests into REST API (v1)
proxy events, calls the API Lambda handler in-process and turns its result back into HTTP."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from stratus_local.lambda_context import LocalLambdaContext

STAGE = "local"
_TEXT_TYPES = ("application/json", "text/", "application/xml", "application/geo+json")


def build_proxy_event(request: Request) -> dict[str, Any]:
    raw_body = request.get_data()
    content_type = request.headers.get("Content-Type", "")
    is_text = not raw_body or any(content_type.startswith(t) for t in _TEXT_TYPES)
    if is_text:
        try:
            body = raw_body.decode("utf-8")
        except UnicodeDecodeError:  # not text after all: passed on base64-encoded, like a binary body
            is_text = False
    if not is_text:
        body = base64.b64encode(raw_body).decode("ascii")
    query = parse_qsl(request.query_string.decode("utf-8"), keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for key, value in query:
        multi_query.setdefault(key, []).append(value)
    multi_headers: dict[str, list[str]] = {}
    for key, value in request.headers.items():
        multi_headers.setdefault(key, []).append(value)
    # API Gateway adds these; the API builds its public URLs from them
    multi_headers.setdefault("X-Forwarded-Proto", [request.scheme])
    multi_headers.setdefault("X-Forwarded-Port", [str(request.host.rpartition(":")[2] or 80)])
    return {
        "resource": "/{proxy+}",
        "path": request.path,
        "httpMethod": request.method,
        "headers": {k: v[-1] for k, v in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": {"proxy": request.path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": request.method,
            "path": request.path,  # served without a stage prefix, like a custom domain
            "stage": STAGE,
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": request.remote_addr or "127.0.0.1", "userAgent": request.user_agent.string},
        },
        "body": body or None,
        "isBase64Encoded": not is_text and bool(raw_body),
    }


def to_response(result: dict[str, Any]) -> Response:
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    response = Response(data, status=result.get("statusCode", 200))
    response.headers.clear()
    for key, value in (result.get("headers") or {}).items():
        response.headers[key] = str(value)
    for key, values in (result.get("multiValueHeaders") or {}).items():
        response.headers.remove(key)
        for value in values:
            response.headers.add(key, str(value))
    return response


class ApiGatewayFront:
    """Requests are handled one at a time, like one warm Lambda container: Powertools keeps the current
    event in a class attribute (`BaseRouter.current_event`), so concurrent requests in one process would
    read each other's headers and bodies. HTTP connections are still accepted in parallel."""

    def __init__(self, handler: Callable[[dict, Any], dict], function_name: str, timeout_s: int) -> None:
        self._handler = handler
        self._function_name = function_name
        self._timeout_s = timeout_s
        self._container = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        event = build_proxy_event(request)
        context = LocalLambdaContext(function_name=self._function_name, timeout_s=self._timeout_s)
        with self._container:
            result = self._handler(event, context)
        return to_response(result)(environ, start_response)


class PathRouter:
    """API Gateway's routes in front of several functions: the first prefix a request's path is under picks its
    front (e.g. `/stac` -> the STAC function), everything else goes to `default`."""

    def __init__(self, default: Callable, fronts: dict[str, Callable]) -> None:
        self._default = default
        self._fronts = fronts

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        front = next((front for prefix, front in self._fronts.items()
                      if path == prefix or path.startswith(f"{prefix}/")), self._default)
        return front(environ, start_response)


class HttpServer:
    """A threaded HTTP server in a background thread."""

    def __init__(self, app: Callable, host: str, port: int) -> None:
        self._server = make_server(host, port, app, threaded=True)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="api-front", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
