"""Collections: openEO `GET /collections` and `GET /collections/{collection_id}` over the STAC catalog."""

from __future__ import annotations

import copy
from typing import Any, Protocol

from stratus.errors import CollectionNotFoundException


class CatalogReader(Protocol):
    def collection_ids(self) -> list[str]: ...

    def collection(self, collection_id: str) -> dict[str, Any] | None: ...


class CatalogService:
    def __init__(self, reader: CatalogReader) -> None:
        self._reader = reader

    def list_collections(self, base_url: str) -> list[dict[str, Any]]:
        collections = []
        for collection_id in self._reader.collection_ids():
            stac = self._reader.collection(collection_id)
            if stac is not None:
                collections.append(self._for_api(stac, base_url))
        return collections

    def get_collection(self, collection_id: str, base_url: str) -> dict[str, Any]:
        """Raises `CollectionNotFoundException` for an unknown id."""
        stac = self._reader.collection(collection_id)
        if stac is None:
            raise CollectionNotFoundException(identifier=collection_id)
        return self._for_api(stac, base_url)

    def queryables(self, collection_id: str, base_url: str) -> dict[str, Any]:
        """The item properties `load_collection`'s `properties` can filter on, as a JSON Schema (STAC API
        filter extension): the numeric and string summaries of the collection."""
        stac = self._reader.collection(collection_id)
        if stac is None:
            raise CollectionNotFoundException(identifier=collection_id)
        properties: dict[str, Any] = {}
        for name, summary in (stac.get("summaries") or {}).items():
            if isinstance(summary, dict) and {"minimum", "maximum"} <= set(summary):
                properties[name] = {"type": "number", "minimum": summary["minimum"], "maximum": summary["maximum"]}
            elif isinstance(summary, list) and summary and all(isinstance(v, (str, int)) for v in summary) \
                    and not name.startswith(("eo:bands", "raster:")):
                properties[name] = {"enum": summary}
        return {
            "$schema": "https://json-schema.org/draft/2019-09/schema",
            "$id": f"{base_url}/collections/{collection_id}/queryables",
            "type": "object",
            "title": f"Queryables of {collection_id}",
            "properties": properties,
            "additionalProperties": False,
        }

    @staticmethod
    def _for_api(stac: dict[str, Any], base_url: str) -> dict[str, Any]:
        """The stored collection with links that point at this API instead of the bucket."""
        collection = copy.deepcopy(stac)
        collection.setdefault("stac_version", "1.0.0")
        collection.setdefault("type", "Collection")
        collection["links"] = [
            link for link in collection.get("links", []) if link.get("rel") not in {"self", "root", "parent", "item",
                                                                                     "items", "child"}
        ] + [
            {"rel": "self", "href": f"{base_url}/collections/{collection['id']}", "type": "application/json"},
            {"rel": "root", "href": f"{base_url}/", "type": "application/json"},
            {"rel": "parent", "href": f"{base_url}/collections", "type": "application/json"},
        ]
        return collection
