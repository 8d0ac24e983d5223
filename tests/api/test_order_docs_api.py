"""The order-service API documents itself: OpenAPI 3.1 at /api/v1/openapi.json, Swagger UI at /api/v1/docs."""

from __future__ import annotations

import re
import sys

from openapi_spec_validator import validate

ORDER_PREFIX = "/api/v1"


def registered_order_routes(handler) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every route the API serves under /api/v1, docs excluded."""
    resolver = sys.modules[handler.__module__].app
    routes = set()
    for route in resolver._static_routes + resolver._dynamic_routes:
        path = route.path
        if not path.startswith(ORDER_PREFIX) or "/docs" in path or path.endswith("/openapi.json"):
            continue
        openapi_path = re.sub(r"<(\w+)>", r"{\1}", path[len(ORDER_PREFIX):])
        routes.add((route.method.lower(), openapi_path))
    return routes


def test_the_document_is_valid_and_covers_exactly_the_routes(api):
    response = api.get(f"{ORDER_PREFIX}/openapi.json")
    assert response.status == 200
    document = response.json()
    validate(document)
    assert document["servers"] == [{"url": f"http://testserver{ORDER_PREFIX}"}]
    documented = {(method, path) for path, operations in document["paths"].items()
                  for method in operations if method in ("get", "post", "put", "patch", "delete")}
    assert documented == registered_order_routes(api.handler)


def test_swagger_ui_is_served_with_its_assets(api):
    page = api.get(f"{ORDER_PREFIX}/docs")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    html = page.body.decode()
    assert "SwaggerUIBundle" in html and '"/auth/token"' in html
    for asset in re.findall(r"(?:src|href)='([^']+)'", html):
        loaded = api.get(asset.removeprefix("http://testserver"))
        assert loaded.status == 200 and len(loaded.body) > 10_000, asset
    assert api.get(f"{ORDER_PREFIX}/docs/../../etc/passwd").status == 404
