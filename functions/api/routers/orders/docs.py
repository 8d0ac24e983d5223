"""The order-service API's own documentation: `GET /api/v1/openapi.json` and a Swagger UI at
`GET /api/v1/docs`.

The OpenAPI document is written by hand, one fragment per area in `openapi/` beside this package,
and merged here (a test checks that every `/api/v1` route is documented and nothing else). Swagger
UI's assets are the ones Powertools ships, served from this function: the page works offline too.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import Response

from routers.orders.context import ORDER_PREFIX
from routers.shared.caller import PublicRouter
from routers.shared.context import root_url

router = PublicRouter()

FRAGMENTS_DIR = Path(__file__).resolve().parents[2] / "openapi"
_ASSETS = {"swagger-ui-bundle.min.js": "text/javascript; charset=utf-8",
           "swagger-ui.min.css": "text/css; charset=utf-8"}
_COMPONENT_KINDS = ("schemas", "responses", "parameters", "securitySchemes", "headers", "requestBodies")


@cache
def merged_fragments() -> dict[str, Any]:
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Stratus order service", "version": "1.0.0",
                 "description": "Order named Earth-observation services for an area and dates, follow their "
                                "status and download the products. Errors use the body {id, code, message, "
                                "links}."},
        "tags": [], "paths": {}, "components": {},
    }
    for path in sorted(FRAGMENTS_DIR.glob("*.json")):
        fragment = json.loads(path.read_text())
        for route, operations in fragment.get("paths", {}).items():
            existing = document["paths"].setdefault(route, {})
            clash = set(existing) & set(operations)
            if clash:
                raise ValueError(f"{path.name}: {route} {sorted(clash)} is documented twice")
            existing.update(operations)
        for kind in _COMPONENT_KINDS:
            # shared names (Error, Link, the security scheme) must agree, so either copy may win
            document["components"].setdefault(kind, {}).update(fragment.get("components", {}).get(kind, {}))
        known = {tag["name"] for tag in document["tags"]}
        document["tags"] += [tag for tag in fragment.get("tags", []) if tag["name"] not in known]
    document["components"] = {k: v for k, v in document["components"].items() if v}
    return document


def openapi_document(base_url: str) -> dict[str, Any]:
    return {**merged_fragments(), "servers": [{"url": f"{base_url}{ORDER_PREFIX}"}]}


@router.get("/openapi.json")
def get_openapi() -> dict:
    return openapi_document(root_url(router))


@router.get("/docs")
def get_docs() -> Response:
    # imported here: Swagger UI's package pulls pydantic, which the other routes must not pay for at cold start
    from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

    assets = f"{root_url(router)}{ORDER_PREFIX}/docs"
    html = generate_swagger_html(json.dumps(openapi_document(root_url(router))),
                                 swagger_js=f"{assets}/swagger-ui-bundle.min.js",
                                 swagger_css=f"{assets}/swagger-ui.min.css", swagger_base_url=assets,
                                 oauth2_config=None)
    return Response(status_code=200, content_type="text/html; charset=utf-8", body=html)


@router.get("/docs/<asset>")
def get_docs_asset(asset: str) -> Response:
    if asset not in _ASSETS:
        return Response(status_code=404, content_type="text/plain", body="not found")
    return Response(status_code=200, content_type=_ASSETS[asset], body=_asset_text(asset),
                    headers={"Cache-Control": "public, max-age=86400"})


@cache
def _asset_text(name: str) -> str:
    import aws_lambda_powertools.event_handler.openapi as openapi_package

    return (Path(openapi_package.__file__).parent / "swagger_ui" / name).read_text(encoding="utf-8")
