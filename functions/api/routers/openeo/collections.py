"""Data discovery: `GET /collections`, `GET /collections/{collection_id}`."""

from __future__ import annotations

from routers.openeo.context import openeo_url
from routers.shared.caller import PublicRouter
from routers.shared.context import backend

router = PublicRouter()


@router.get("/collections")
def list_collections() -> dict:
    base = openeo_url(router)
    return {"collections": backend().catalog.list_collections(base),
            "links": [{"rel": "self", "href": f"{base}/collections"}]}


@router.get("/collections/<collection_id>")
def describe_collection(collection_id: str) -> dict:
    return backend().catalog.get_collection(collection_id, openeo_url(router))


@router.get("/collections/<collection_id>/queryables")
def list_queryables(collection_id: str) -> dict:
    return backend().catalog.queryables(collection_id, openeo_url(router))
