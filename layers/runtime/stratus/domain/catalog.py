"""Collections: openEO `GET /collections` and `GET /collections/{collection_id}` over the own STAC catalog in
the data bucket and the configured remote collections (`stratus.collections_config`, metadata from the cache
of `stratus.domain.collection_refresh`)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from stratus.collections_config import OWN, CollectionsConfig, CollectionSource
from stratus.domain.collection_metadata import ALIASES_FIELD, deep_merge, openeo_collection
from stratus.domain.collection_refresh import CachedDocument
from stratus.errors import CollectionNotFoundException


class CatalogReader(Protocol):
    def collection_ids(self) -> list[str]: ...

    def collection(self, collection_id: str) -> dict[str, Any] | None: ...


class ConfiguredCollections(Protocol):
    """The deployment's collections configuration and the cached source documents of its remote entries."""

    def config(self) -> CollectionsConfig: ...

    def cached(self, collection_ids: Sequence[str]) -> Mapping[str, CachedDocument]: ...


class CatalogService:
    """Own collections first (in the catalog's order), then the configured remote ones (in the
    configuration's order); a configured entry hides an own collection of the same name."""

    def __init__(self, reader: CatalogReader, configured: ConfiguredCollections | None = None) -> None:
        self._reader = reader
        self._configured = configured

    def list_collections(self, base_url: str) -> list[dict[str, Any]]:
        config = self._config()
        remote = [source for source in config.collections if source.kind != OWN]
        remote_names = {name for source in remote for name in source.names}
        collections = []
        for collection_id in self._reader.collection_ids():
            if collection_id in remote_names:
                continue
            stac = self._reader.collection(collection_id)
            if stac is not None:
                collections.append(self._for_api(self._own(stac, config.resolve(collection_id)), base_url))
        cached = self._configured.cached([source.id for source in remote]) if remote else {}
        for source in remote:
            collections.append(self._for_api(self._remote(source, cached.get(source.id)), base_url))
        return collections

    def get_collection(self, collection_id: str, base_url: str) -> dict[str, Any]:
        """By id or alias; raises `CollectionNotFoundException` for an unknown name."""
        return self._for_api(self._document(collection_id), base_url)

    def has_collection(self, collection_id: str) -> bool:
        """By id or alias: a configured remote collection, or an own one in the catalog."""
        source = self._config().resolve(collection_id)
        if source is not None and source.kind != OWN:
            return True
        return self._reader.collection(source.id if source is not None else collection_id) is not None

    def _document(self, collection_id: str) -> dict[str, Any]:
        source = self._config().resolve(collection_id)
        if source is not None and source.kind != OWN:
            return self._remote(source, self._configured.cached([source.id]).get(source.id))
        stac = self._reader.collection(source.id if source is not None else collection_id)
        if stac is None:
            raise CollectionNotFoundException(identifier=collection_id)
        return self._own(stac, source)

    def _config(self) -> CollectionsConfig:
        return self._configured.config() if self._configured is not None else CollectionsConfig()

    @staticmethod
    def _remote(source: CollectionSource, cached: CachedDocument | None) -> dict[str, Any]:
        if cached is None:
            return openeo_collection(source, None)
        return openeo_collection(source, cached.document, fetched_at=cached.fetched_at)

    @staticmethod
    def _own(stac: dict[str, Any], source: CollectionSource | None) -> dict[str, Any]:
        """An own collection, with the aliases and metadata overrides of its configuration entry if any."""
        if source is None or (not source.aliases and not source.metadata):
            return stac
        collection = dict(stac)
        if source.aliases:
            collection[ALIASES_FIELD] = list(source.aliases)
            names = ", ".join(f"`{alias}`" for alias in source.aliases)
            collection["description"] = f"{collection.get('description', '')}\n\nAlso available as {names}."
        return deep_merge(collection, source.metadata)

    def queryables(self, collection_id: str, base_url: str) -> dict[str, Any]:
        """The item properties `load_collection`'s `properties` can filter on, as a JSON Schema (STAC API
        filter extension): the numeric and string summaries of the collection."""
        stac = self._document(collection_id)
        collection_id = stac["id"]
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
