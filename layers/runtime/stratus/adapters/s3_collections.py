"""The collections configuration and the cached source documents of its remote entries, in the data bucket
(`catalog_layout.collections_config_key`, `catalog_layout.collection_cache_key`).

S3 rather than DynamoDB for the cache: the documents are JSON files of up to tens of KB that the data
bucket already holds beside the own catalog (the API reads that bucket already, no new table or grant for
it), one object per collection so a refresh writes only what it fetched, and the refresh function gets
`PutObject` on the cache prefix alone. Reads are memoised per process like the own catalog's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from stratus import catalog_layout
from stratus.collections_config import CollectionsConfig, CollectionsConfigError, parse
from stratus.domain.collection_refresh import CachedDocument
from stratus.observability import logger

CACHE_SECONDS = 60  # a warm API function sees a refresh or a new configuration within a minute
_READS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="collections-cache")


class S3CollectionsStore:
    """`ConfiguredCollections`, `CollectionsConfigSource` and `CollectionDocumentCache` over the data bucket."""

    def __init__(self, s3_client: Any, bucket: str, *, cache_seconds: float = CACHE_SECONDS) -> None:
        self._s3 = s3_client
        self._bucket = bucket
        self._cache_seconds = cache_seconds
        self._memo: dict[str, tuple[float, Any]] = {}

    def config(self) -> CollectionsConfig:
        """The deployment's configuration; none stored: no configured collections. An invalid one (only
        possible by hand: CDK and the local runtime validate before writing) is logged and ignored, so
        `/collections` still lists the own collections."""
        document = self._read_json(catalog_layout.collections_config_key())
        if document is None:
            return CollectionsConfig()
        try:
            return parse(document)
        except CollectionsConfigError as error:
            logger.error("the stored collections configuration is invalid; only own collections are offered",
                         extra={"reason": str(error)})
            return CollectionsConfig()

    def cached(self, collection_ids: Sequence[str]) -> dict[str, CachedDocument]:
        return self.get_many(collection_ids)

    def get_many(self, collection_ids: Sequence[str]) -> dict[str, CachedDocument]:
        keys = {collection_id: catalog_layout.collection_cache_key(collection_id) for collection_id in collection_ids}
        missing = [key for key in keys.values() if not self._fresh(key)]
        for key, value in zip(missing, _READS.map(self._fetch_json, missing)):
            self._memo[key] = (time.monotonic(), value)
        found = {}
        for collection_id, key in keys.items():
            value = self._memo[key][1]
            if value is not None:
                try:
                    found[collection_id] = CachedDocument.from_json(value)
                except (KeyError, TypeError, ValueError):
                    logger.warning("unreadable cached collection document ignored", extra={"key": key})
        return found

    def put(self, collection_id: str, cached: CachedDocument) -> None:
        key = catalog_layout.collection_cache_key(collection_id)
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=json.dumps(cached.to_json()).encode(),
                            ContentType="application/json")
        self._memo[key] = (time.monotonic(), cached.to_json())

    def _read_json(self, key: str) -> Any:
        if not self._fresh(key):
            self._memo[key] = (time.monotonic(), self._fetch_json(key))
        return self._memo[key][1]

    def _fresh(self, key: str) -> bool:
        memo = self._memo.get(key)
        return memo is not None and time.monotonic() - memo[0] < self._cache_seconds

    def _fetch_json(self, key: str) -> Any:
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            return None
        try:
            return json.loads(body)
        except ValueError:
            logger.error("a collections object in the data bucket is not JSON", extra={"key": key})
            return None
