"""`CatalogReader` over the static STAC catalog in the data bucket."""

from __future__ import annotations

import time
from typing import Any

from stratus import catalog_layout
from stratus.adapters.s3_json import read_json

CACHE_SECONDS = 60  # collections change rarely; a warm Lambda re-reads at most once a minute


class S3CatalogReader:
    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self._bucket = bucket
        self._cache: dict[str, tuple[float, Any]] = {}

    def _read_json(self, key: str) -> Any:
        cached = self._cache.get(key)
        if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        value = read_json(self._s3, self._bucket, key)
        self._cache[key] = (time.monotonic(), value)
        return value

    def collection_ids(self) -> list[str]:
        catalog = self._read_json(catalog_layout.catalog_key()) or {}
        ids = []
        for link in catalog.get("links", []):
            if link.get("rel") == "child":
                # ./collections/<id>/collection.json
                parts = link["href"].rstrip("/").split("/")
                if len(parts) >= 2:
                    ids.append(parts[-2])
        return ids

    def items(self, collection_id: str) -> list[dict[str, Any]]:
        """Every item of a collection (a listing plus one read per item, cached like the rest)."""
        if self.collection(collection_id) is None:
            return []
        cached = self._cache.get(f"items:{collection_id}")
        if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        keys = []
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=catalog_layout.items_prefix(collection_id)):
            keys.extend(obj["Key"] for obj in page.get("Contents", []) if obj["Key"].endswith(".json"))
        items = [item for item in (self._read_json(key) for key in keys) if item]
        self._cache[f"items:{collection_id}"] = (time.monotonic(), items)
        return items

    def collection(self, collection_id: str) -> dict[str, Any] | None:
        if "/" in collection_id or collection_id in {".", ".."}:
            return None
        return self._read_json(catalog_layout.collection_key(collection_id))
