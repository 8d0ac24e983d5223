"""The engine's catalog: `load_collection(id)` through the deployment's collections configuration
(`stratus.collections_config`, stored in the data bucket at `catalog_layout.collections_config_key()`).

An id or alias resolves to its configured entry:
- `stac-api`: the source API's collection (`<url>/collections/<collection>`) gives the bands
  (`item_assets`, with the entry's band renames); items come from the API's `/search` (its landing
  page's `search` link, else the collection's `items`), with the entry's default CQL2 `filter` (sent
  when the API declares the Filter extension, checked on every item here anyway);
- `stac-catalog`: a static catalog or collection document by https:// or s3:// URL;
- `own`, or a name no entry has: the data bucket's own collection, as before the configuration.

Remote sources are read through the engine's outbound guard, with the configuration's
`allowed_private_hosts` added to the deployment's; their assets may be in any S3 bucket but the
deployment's protected ones (results, user files); auth headers come from the entry's Secrets Manager
secret (a JSON object of headers) and go to the source's own host only; a `requester_pays` source's
s3:// documents and assets are read with the requester paying.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from stratus import catalog_layout
from stratus.collections_config import (OWN, STAC_API, CollectionsConfig, CollectionsConfigError, CollectionSource,
                                        parse)
from stratus.errors import InternalException
from stratus.outbound import AllowList

from stratus_processing.io.stac import (CatalogCollection, Collection, CollectionIndex, DocumentReader,
                                        HttpStatusError, JsonStore,
                                        SearchRequest, StacApi, StacCatalog, StacItem, StacReadError, item_filter,
                                        open_stac_source, renamed_bands)

# A secret's id -> the HTTP headers it holds (Secrets Manager in a deployment).
SecretHeaders = Callable[[str], Mapping[str, str]]


def secrets_manager_headers(client: Callable[[], Any]) -> SecretHeaders:
    """Headers from a Secrets Manager secret whose string is a JSON object of header names to values;
    `client` makes the Secrets Manager client, once a source needs it."""

    def headers(secret_id: str) -> Mapping[str, str]:
        value = json.loads(client().get_secret_value(SecretId=secret_id)["SecretString"])
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ValueError("the secret must hold a JSON object of header names to values")
        return value
    return headers


class ConfiguredCatalog(StacCatalog):
    def __init__(self, store: JsonStore, *, documents: DocumentReader | None = None,
                 config: CollectionsConfig | None = None, secret_headers: SecretHeaders | None = None,
                 protected_buckets: Sequence[str] = (), index: CollectionIndex | None = None) -> None:
        """`config`: the configuration (read from `store` on first use when None); `protected_buckets`:
        buckets no configured source's href may point into (other users' results and files); `index`: the
        catalogue index own collections are searched in once indexed."""
        super().__init__(store, documents=documents, index=index)
        self._config = config
        self._config_lock = threading.Lock()
        self._secret_headers = secret_headers
        self._protected_buckets = tuple(protected_buckets)

    @property
    def config(self) -> CollectionsConfig:
        with self._config_lock:
            if self._config is None:
                document = self._store.read_json(catalog_layout.collections_config_key())
                try:
                    self._config = parse(document) if document is not None else CollectionsConfig()
                except CollectionsConfigError as exc:
                    raise InternalException(message=f"The collections configuration is invalid: {exc}") from None
            return self._config

    def open(self, name: str) -> CatalogCollection:
        source = self.config.resolve(name)
        if source is None:
            return self._open_own(name)
        if source.kind == OWN:
            return self._open_own(source.id, source.bands, name=source.id)
        documents = self._documents_for(source)
        try:
            if source.kind == STAC_API:
                return self._open_api(source, documents)
            return self._open_static(source, documents)
        except HttpStatusError as exc:
            if exc.status == 404:
                raise InternalException(message=f"The source of collection '{source.id}' doesn't know it: "
                                                f"{exc}") from None
            raise InternalException(message=f"The source of collection '{source.id}' is not readable: {exc}") from None
        except StacReadError as exc:
            raise InternalException(message=f"The source of collection '{source.id}' is not readable: {exc}") from None

    def _documents_for(self, source: CollectionSource) -> DocumentReader:
        allow = self.documents.allow
        extra = AllowList.parse(self.config.allowed_private_hosts)
        combined = AllowList(allow.hosts | extra.hosts, allow.networks + extra.networks, allow.allow_all)
        headers: Mapping[str, str] = {}
        if source.auth_secret:
            if self._secret_headers is None:
                raise InternalException(message=f"Collection '{source.id}' needs the secret {source.auth_secret!r} "
                                                "but no secrets store is configured.")
            try:
                headers = self._secret_headers(source.auth_secret)
            except Exception as exc:  # noqa: BLE001 - never echo the secret's content
                raise InternalException(message=f"The auth secret of collection '{source.id}' is not readable "
                                                f"({type(exc).__name__}).") from None
        return self.documents.for_source(allow=combined, protected_buckets=self._protected_buckets,
                                         requester_pays=source.requester_pays, headers=headers,
                                         headers_origin=source.url)

    def _open_api(self, source: CollectionSource, documents: DocumentReader) -> CatalogCollection:
        root_url = source.url.rstrip("/")
        collection_url = f"{root_url}/collections/{urllib.parse.quote(source.source_collection, safe='')}"
        collection = Collection(source.id, documents.read(collection_url), collection_url)
        landing = Collection("root", documents.read(root_url), root_url)
        search_url = landing.link("search")
        try:
            api = StacApi(documents, search_url=search_url, items_url=collection.link("items"), root_url=root_url,
                          landing=landing.document, default_filter=source.filter)
        except ValueError as exc:
            raise InternalException(message=f"Collection '{source.id}' can't be searched: {exc}") from None
        return CatalogCollection(
            source.id, renamed_bands(collection.bands, source.bands),
            lambda request: _sourced(source, api.search(source.source_collection, request)),
            check_href=documents.check_href)

    def _open_static(self, source: CollectionSource, documents: DocumentReader) -> CatalogCollection:
        static = open_stac_source(source.url, documents)
        try:
            accept = item_filter(source.filter) if source.filter else None
        except ValueError as exc:
            raise InternalException(message=f"The filter of collection '{source.id}' is invalid: {exc}") from None
        bands = static.collection.bands if static.collection is not None and static.collection.bands else None

        def search(request: SearchRequest) -> list[StacItem]:
            items = [item for item in static.search(request) if accept is None or accept(item)]
            return _sourced(source, items)

        return CatalogCollection(source.id, renamed_bands(bands, source.bands) if bands is not None else None,
                                 search, check_href=documents.check_href, renames=source.bands)


def _sourced(source: CollectionSource, items: list[StacItem]) -> list[StacItem]:
    """Items as read from `source`: a requester-pays source's s3:// assets say so (`storage:` extension),
    which is what the raster reader acts on."""
    if not source.requester_pays:
        return items
    marked = []
    for item in items:
        assets = {key: {**asset, "storage:requester_pays": True} if str(asset.get("href", "")).startswith("s3://")
                  else asset for key, asset in item.assets.items()}
        marked.append(replace(item, assets=assets))
    return marked
