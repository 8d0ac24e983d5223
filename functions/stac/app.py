"""STAC API Lambda (`/stac/`): its own function because the index is searched with DuckDB, which the API
function must not import. Only wiring lives here; the rules are in `stratus.domain.stac_api.StacCatalogue`.

Callers sign in like on the openEO API (`Authorization: Bearer basic//<token>` or `Bearer oidc/<provider>/<token>`);
without a credential they see the public collections. Errors are STAC API errors: `{"code", "description"}`.
"""

from __future__ import annotations

import base64
import binascii
import json
from functools import cache
from typing import Any
from urllib.parse import quote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from stratus import request_limits
from stratus.backend import Backend
from stratus.domain import stac_search
from stratus.domain.principal import CallerRefused, Credential, OidcAccessToken, Principal, SignedToken
from stratus.domain.stac_api import BadRequest, Forbidden, NotFound
from stratus.observability import logger, tracer

PREFIX = "/stac"
MAX_BODY_BYTES = 5_000_000  # an ItemCollection of Transactions; Lambda's payload limit is 6 MB
GEOJSON = "application/geo+json"

cors = CORSConfig(allow_origin="*", allow_headers=["Authorization", "Content-Type"], expose_headers=["Location"],
                  max_age=3600)
app = APIGatewayRestResolver(cors=cors, strip_prefixes=[PREFIX])


@cache
def backend() -> Backend:
    return Backend.from_env()


class Unauthorized(Exception):
    pass


def _error(status: int, code: str, description: str) -> Response:
    return Response(status, "application/json", json.dumps({"code": code, "description": description}))


@app.exception_handler(NotFound)
def _not_found(error: NotFound) -> Response:
    return _error(404, "NotFound", str(error))


@app.exception_handler(Forbidden)
def _forbidden(error: Forbidden) -> Response:
    return _error(403, "Forbidden", str(error))


@app.exception_handler(Unauthorized)
def _unauthorized(error: Unauthorized) -> Response:
    return _error(401, "Unauthorized", str(error))


@app.exception_handler(BadRequest)
def _bad_request(error: BadRequest) -> Response:
    return _error(400, "BadRequest", str(error))


@app.exception_handler(stac_search.InvalidSearch)
def _invalid_search(error: stac_search.InvalidSearch) -> Response:
    return _error(400, "InvalidParameterValue", str(error))


@app.not_found
def _no_route(_: Exception) -> Response:
    return _error(404, "NotFound", f"no such resource: {app.current_event.path}")


def _json(document: Any, status: int = 200, media_type: str = "application/json",
          headers: dict[str, str] | None = None) -> Response:
    return Response(status, media_type, json.dumps(document), headers=headers)


def base_url() -> str:
    event = app.current_event
    headers = {k.lower(): v for k, v in (event.headers or {}).items()}
    host = headers.get("x-forwarded-host") or headers.get("host") or "localhost"
    proto = headers.get("x-forwarded-proto", "https")
    request_path = event.request_context.path or event.path
    stage_prefix = request_path[: len(request_path) - len(event.path)] if request_path.endswith(event.path) else ""
    return f"{proto}://{host}{stage_prefix}{PREFIX}"


def caller() -> Principal | None:
    authorization = app.current_event.headers.get("Authorization") or app.current_event.headers.get("authorization")
    if not authorization:
        return None
    try:
        return backend().callers.resolve(_credential(authorization))
    except CallerRefused:
        raise Unauthorized("the token is invalid, expired or revoked") from None


def _credential(authorization: str) -> Credential:
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        raise Unauthorized("use Authorization: Bearer basic//<token> (or oidc/<provider>/<token>)")
    if value.startswith("oidc/") and value.count("/") >= 2:
        _, provider, token = value.split("/", 2)
        return OidcAccessToken(provider, token)
    method, _, token = value.partition("//")
    if method != "basic" or not token:
        raise Unauthorized("use Authorization: Bearer basic//<token> (or oidc/<provider>/<token>)")
    return SignedToken(token)


def body() -> Any:
    event = app.current_event
    try:
        raw = base64.b64decode(event.body or "") if event.is_base64_encoded else event.body
        return request_limits.parse_json_body(raw, MAX_BODY_BYTES)
    except (binascii.Error, request_limits.BodyRefused) as refused:
        raise BadRequest(str(refused) or "the request body is not valid JSON") from None


def query() -> dict[str, str]:
    return dict(app.current_event.query_string_parameters or {})


@app.get("/")
def landing() -> Response:
    return _json(backend().stac_catalogue.landing(base_url(), backend().settings.backend_title))


@app.get("/conformance")
def conformance() -> Response:
    return _json(backend().stac_catalogue.conformance())


@app.get("/api")
def service_description() -> Response:
    return _json(_openapi(base_url()), media_type="application/vnd.oai.openapi+json;version=3.0")


@app.get("/queryables")
def queryables() -> Response:
    return _json(backend().stac_catalogue.queryables(caller(), base_url()), media_type="application/schema+json")


@app.get("/collections")
def collections() -> Response:
    return _json(backend().stac_catalogue.collections(caller(), base_url()))


@app.get("/collections/<collection_id>")
def collection(collection_id: str) -> Response:
    return _json(backend().stac_catalogue.collection(caller(), collection_id, base_url()))


@app.get("/collections/<collection_id>/queryables")
def collection_queryables(collection_id: str) -> Response:
    return _json(backend().stac_catalogue.queryables(caller(), base_url(), collection_id),
                 media_type="application/schema+json")


@app.get("/collections/<collection_id>/items")
def items(collection_id: str) -> Response:
    params = query()
    request = stac_search.from_query_string({k: v for k, v in params.items() if k != "collections"})
    return _json(backend().stac_catalogue.items(caller(), collection_id, request, base_url(), params),
                 media_type=GEOJSON)


@app.post("/collections/<collection_id>/items")
def add_items(collection_id: str) -> Response:
    ids = backend().stac_catalogue.add_items(caller(), collection_id, body(), base_url())
    location = f"{base_url()}/collections/{quote(collection_id, safe='')}/items/{quote(ids[0], safe='')}"
    # 202: the indexer applies the change within its batching window
    return _json({"collection": collection_id, "queued": ids}, 202, headers={"Location": location})


@app.get("/collections/<collection_id>/items/<item_id>")
def item(collection_id: str, item_id: str) -> Response:
    return _json(backend().stac_catalogue.item(caller(), collection_id, item_id, base_url()), media_type=GEOJSON)


@app.put("/collections/<collection_id>/items/<item_id>")
def replace_item(collection_id: str, item_id: str) -> Response:
    backend().stac_catalogue.replace_item(caller(), collection_id, item_id, body(), base_url())
    return _json({"collection": collection_id, "queued": [item_id]}, 202)


@app.delete("/collections/<collection_id>/items/<item_id>")
def delete_item(collection_id: str, item_id: str) -> Response:
    backend().stac_catalogue.delete_item(caller(), collection_id, item_id, base_url())
    return _json({"collection": collection_id, "queued": [item_id]}, 202)


@app.post("/collections/<collection_id>/harvests")
def harvest(collection_id: str) -> Response:
    from stratus.adapters.remote_stac import RemoteSearchFailed

    try:
        outcome = backend().stac_catalogue.harvest(caller(), collection_id, body(), base_url())
    except RemoteSearchFailed as failed:
        return _error(502, "RemoteSearchFailed", str(failed))
    return _json(outcome, 202)


@app.get("/search")
def search_get() -> Response:
    params = query()
    request = stac_search.from_query_string(params)
    return _json(backend().stac_catalogue.search(caller(), request, base_url(), method="GET", query=params),
                 media_type=GEOJSON)


@app.post("/search")
def search_post() -> Response:
    document = body()
    request = stac_search.from_body(document)
    return _json(backend().stac_catalogue.search(caller(), request, base_url(), method="POST", body=document),
                 media_type=GEOJSON)


def _openapi(base: str) -> dict[str, Any]:
    paths = ["/", "/conformance", "/queryables", "/collections", "/collections/{collectionId}",
             "/collections/{collectionId}/queryables", "/collections/{collectionId}/items",
             "/collections/{collectionId}/items/{itemId}", "/search"]
    return {"openapi": "3.0.3", "info": {"title": "Stratus STAC API", "version": "1.0.0"},
            "servers": [{"url": base}],
            "paths": {path: {"get": {"responses": {"200": {"description": "OK"}}}} for path in paths}}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
