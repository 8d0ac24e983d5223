"""Which collections a deployment offers and where their items live: the per-stage collections
configuration (`infra/collections/<name>.json`, chosen by the CDK context `stratus:collections`).

One parser for everyone who reads it: the API (listing and metadata, `stratus.domain.catalog`), the
metadata refresh, and the processing engine (`load_collection` resolves an id or alias to its source).
CDK and the local runtime store the chosen file in the data bucket at
`stratus.catalog_layout.collections_config_key()`.

Three kinds of entries:
- `stac-api`: a collection of a remote STAC API (`url` is the API root, `collection` the id there);
- `stac-catalog`: a static STAC catalog or collection document by https:// or s3:// URL;
- `own`: a collection in the data bucket in Stratus' own layout (`stratus.catalog_layout`); own
  collections found in the bucket are offered without an entry, an entry only adds aliases and overrides.

JSON rather than YAML: the runtime layer and the Lambda functions stay free of a YAML parser.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STAC_API, STAC_CATALOG, OWN = "stac-api", "stac-catalog", "own"
KINDS = (STAC_API, STAC_CATALOG, OWN)
# openEO collection ids: what the openEO API's `collection_id` path parameter allows
_ID = re.compile(r"^[\w\-.~/]+$")
_URL_SCHEMES = {STAC_API: ("https://", "http://"), STAC_CATALOG: ("https://", "http://", "s3://")}


class CollectionsConfigError(ValueError):
    """The configuration is not valid; the message names the entry and the field."""


@dataclass(frozen=True)
class CollectionSource:
    id: str
    kind: str
    url: str | None = None  # stac-api: the API root; stac-catalog: the catalog's or collection's document
    collection: str | None = None  # stac-api: the collection's id at the source (default: `id`)
    aliases: tuple[str, ...] = ()  # other names users type for it, e.g. SENTINEL2_L2A
    # openEO band name -> the source's asset key, for bands offered under another name than their asset's
    bands: Mapping[str, str] = field(default_factory=dict)
    # a CQL2-JSON filter on item properties always applied (ANDed with the user's `properties`)
    filter: Mapping[str, Any] | None = None
    # Secrets Manager secret (name or ARN) whose JSON object holds the HTTP headers the source needs
    auth_secret: str | None = None
    requester_pays: bool = False  # S3 assets are read with the reader paying (Landsat C2 on AWS)
    # S3 buckets whose s3:// assets the processing reads with its role (cross-account reads need the role's
    # own permission; https:// assets need none)
    asset_buckets: tuple[str, ...] = ()
    # fields merged over the source's collection document in `/collections` (title, description, ...)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def source_collection(self) -> str:
        return self.collection or self.id

    @property
    def names(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)


@dataclass(frozen=True)
class CollectionsConfig:
    collections: tuple[CollectionSource, ...] = ()
    # hosts or CIDRs of STAC servers the operator runs privately (`stratus.outbound.AllowList` syntax)
    allowed_private_hosts: tuple[str, ...] = ()

    def resolve(self, name: str) -> CollectionSource | None:
        """The entry a collection id or alias names (ids and aliases are case-sensitive, as openEO ids)."""
        for source in self.collections:
            if name in source.names:
                return source
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "collections": [_entry_json(source) for source in self.collections],
            "allowed_private_hosts": list(self.allowed_private_hosts),
        }


def parse(document: Any) -> CollectionsConfig:
    """Raises `CollectionsConfigError` naming the first problem."""
    if not isinstance(document, Mapping):
        raise CollectionsConfigError("the collections configuration must be a JSON object")
    unknown = set(document) - {"collections", "allowed_private_hosts", "$comment"}
    if unknown:
        raise CollectionsConfigError(f"unknown top-level fields: {sorted(unknown)}")
    entries = document.get("collections", [])
    if not isinstance(entries, list):
        raise CollectionsConfigError("'collections' must be a list")
    hosts = document.get("allowed_private_hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
        raise CollectionsConfigError("'allowed_private_hosts' must be a list of host names or CIDRs")
    sources = tuple(_parse_entry(entry, index) for index, entry in enumerate(entries))
    seen: dict[str, str] = {}
    for source in sources:
        for name in source.names:
            if name in seen:
                raise CollectionsConfigError(f"the name {name!r} is used by {seen[name]!r} and {source.id!r}")
            seen[name] = source.id
    return CollectionsConfig(sources, tuple(hosts))


def load(path: str | Path) -> CollectionsConfig:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CollectionsConfigError(f"{path} is not JSON: {exc}") from None
    return parse(document)


_ENTRY_FIELDS = {"id", "kind", "url", "collection", "aliases", "bands", "filter", "auth_secret", "requester_pays",
                 "asset_buckets", "metadata", "$comment"}
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


def _parse_entry(entry: Any, index: int) -> CollectionSource:
    where = f"collections[{index}]"
    if not isinstance(entry, Mapping):
        raise CollectionsConfigError(f"{where} must be an object")
    unknown = set(entry) - _ENTRY_FIELDS
    if unknown:
        raise CollectionsConfigError(f"{where}: unknown fields {sorted(unknown)}")
    collection_id = entry.get("id")
    if not isinstance(collection_id, str) or not _ID.match(collection_id):
        raise CollectionsConfigError(f"{where}: 'id' must be a collection id (letters, digits, - _ . ~ /)")
    where = f"collection {collection_id!r}"
    kind = entry.get("kind")
    if kind not in KINDS:
        raise CollectionsConfigError(f"{where}: 'kind' must be one of {list(KINDS)}")
    url = entry.get("url")
    if kind in _URL_SCHEMES:
        if not isinstance(url, str) or not url.startswith(_URL_SCHEMES[kind]):
            raise CollectionsConfigError(f"{where}: 'url' must start with one of {list(_URL_SCHEMES[kind])}")
    elif url is not None:
        raise CollectionsConfigError(f"{where}: an own collection has no 'url'")
    aliases = entry.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and _ID.match(a) for a in aliases):
        raise CollectionsConfigError(f"{where}: 'aliases' must be a list of collection ids")
    bands = entry.get("bands", {})
    if not isinstance(bands, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in bands.items()):
        raise CollectionsConfigError(f"{where}: 'bands' must map openEO band names to asset keys")
    filter_ = entry.get("filter")
    if filter_ is not None and not isinstance(filter_, Mapping):
        raise CollectionsConfigError(f"{where}: 'filter' must be a CQL2-JSON object")
    for name in ("collection", "auth_secret"):
        if entry.get(name) is not None and not isinstance(entry[name], str):
            raise CollectionsConfigError(f"{where}: {name!r} must be a string")
    if not isinstance(entry.get("requester_pays", False), bool):
        raise CollectionsConfigError(f"{where}: 'requester_pays' must be true or false")
    buckets = entry.get("asset_buckets", [])
    if not isinstance(buckets, list) or not all(isinstance(b, str) and _BUCKET.match(b) for b in buckets):
        raise CollectionsConfigError(f"{where}: 'asset_buckets' must be a list of S3 bucket names")
    metadata = entry.get("metadata", {})
    if not isinstance(metadata, Mapping):
        raise CollectionsConfigError(f"{where}: 'metadata' must be an object")
    return CollectionSource(id=collection_id, kind=kind, url=url, collection=entry.get("collection"),
                            aliases=tuple(aliases), bands=dict(bands), filter=filter_,
                            auth_secret=entry.get("auth_secret"), requester_pays=entry.get("requester_pays", False),
                            asset_buckets=tuple(buckets), metadata=dict(metadata))


def _entry_json(source: CollectionSource) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": source.id, "kind": source.kind}
    for name in ("url", "collection", "filter", "auth_secret"):
        if getattr(source, name) is not None:
            entry[name] = getattr(source, name)
    if source.aliases:
        entry["aliases"] = list(source.aliases)
    if source.bands:
        entry["bands"] = dict(source.bands)
    if source.requester_pays:
        entry["requester_pays"] = True
    if source.asset_buckets:
        entry["asset_buckets"] = list(source.asset_buckets)
    if source.metadata:
        entry["metadata"] = dict(source.metadata)
    return entry
