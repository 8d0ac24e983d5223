"""The STAC API over the catalogue (`/stac/`): landing page, conformance, collections, items, search, queryables,
Transactions and harvests. Plain Python: the index, the ingest queue and outbound HTTP come in as ports.

Who sees what: everyone the deployment's own collections; a signed-in user also the collection of their own
job results and order products (`results_collection_id`); admins every collection. A collection the caller
may not see does not exist for them (404, like an unknown one). Remote collections are listed with a link to
their own API, which serves their items.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from stratus.collections_config import OWN
from stratus.domain.principal import Principal
from stratus.domain.stac_items import InvalidItem, IngestMessage, check_id, delete, upsert, validate_item
from stratus.domain.stac_search import InvalidSearch, SearchPage, SearchRequest, page_token

STAC_VERSION = "1.1.0"
CATALOG_WRITE_SCOPE = "catalog:write"
RESULTS_PREFIX = "results-"
GEOJSON = "application/geo+json"
JSON = "application/json"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
# Fields extension: always in a projected item; the default set (an empty `include`)
ALWAYS_FIELDS = ("type", "stac_version", "id", "links")
DEFAULT_FIELDS = ("type", "stac_version", "id", "geometry", "bbox", "links", "assets", "properties.datetime")
CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/ogcapi-features/extensions/transaction",
    "https://api.stacspec.org/v1.0.0/ogcapi-features#fields",
    "https://api.stacspec.org/v1.0.0/ogcapi-features#sort",
    "https://api.stacspec.org/v1.0.0/ogcapi-features#query",
    "https://api.stacspec.org/v1.0.0-rc.3/ogcapi-features#filter",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#fields",
    "https://api.stacspec.org/v1.0.0/item-search#sort",
    "https://api.stacspec.org/v1.0.0/item-search#query",
    "https://api.stacspec.org/v1.0.0-rc.3/item-search#filter",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/simpletx",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-operators",
]


class NotFound(LookupError):
    pass


class Forbidden(PermissionError):
    pass


class BadRequest(ValueError):
    pass


class CatalogueIndex(Protocol):
    def search(self, request: SearchRequest) -> SearchPage: ...

    def get_item(self, collection: str, item_id: str) -> dict[str, Any] | None: ...

    def queryables(self, collections: Sequence[str]) -> dict[str, str]: ...


class IngestSender(Protocol):
    def send(self, messages: Sequence[IngestMessage]) -> None: ...


class Collections(Protocol):
    """The deployment's own and configured collections (`stratus.domain.catalog.CatalogService`)."""

    def list_collections(self, base_url: str) -> list[dict[str, Any]]: ...


class RemoteSearch(Protocol):
    """A page of a remote STAC API's search through the outbound guard: POST with a body, or GET (`body` None,
    the parameters in the URL, as `next` links of GET searches give them)."""

    def page(self, url: str, body: dict[str, Any] | None, budget_s: float) -> dict[str, Any]: ...


def results_collection_id(user_id: str) -> str:
    """The collection of one user's job results and order products."""
    return f"{RESULTS_PREFIX}{quote(user_id, safe='')}"


@dataclass(frozen=True)
class Visible:
    id: str
    document: dict[str, Any]
    remote_items_url: str | None = None  # set for remote collections: their items live there


class StacCatalogue:
    def __init__(self, collections: Collections, index: CatalogueIndex, queue: IngestSender, *,
                 remote_sources: Callable[[], Mapping[str, Any]], remote_search: RemoteSearch | None = None,
                 max_item_bytes: int, harvest_max_items: int, harvest_budget_s: float) -> None:
        self._collections = collections
        self._index = index
        self._queue = queue
        self._remote_sources = remote_sources  # collection id -> CollectionSource of remote collections
        self._remote_search = remote_search
        self._max_item_bytes = max_item_bytes
        self._harvest_max_items = harvest_max_items
        self._harvest_budget_s = harvest_budget_s

    # --- discovery -----------------------------------------------------------------------------------------

    def landing(self, base: str, title: str) -> dict[str, Any]:
        return {
            "type": "Catalog", "stac_version": STAC_VERSION, "id": "stratus",
            "title": f"{title} catalogue", "description": "STAC API over the back-end's own data and your results.",
            "conformsTo": CONFORMANCE,
            "links": [
                _link("self", f"{base}/", JSON), _link("root", f"{base}/", JSON),
                _link("conformance", f"{base}/conformance", JSON), _link("data", f"{base}/collections", JSON),
                {**_link("search", f"{base}/search", GEOJSON), "method": "GET"},
                {**_link("search", f"{base}/search", GEOJSON), "method": "POST"},
                _link(QUERYABLES_REL, f"{base}/queryables", "application/schema+json"),
                _link("service-desc", f"{base}/api", "application/vnd.oai.openapi+json;version=3.0"),
            ],
        }

    def visible(self, caller: Principal | None, base: str) -> dict[str, Visible]:
        found: dict[str, Visible] = {}
        remote = self._remote_sources()
        for document in self._collections.list_collections(base):
            collection_id = document["id"]
            if collection_id.startswith(RESULTS_PREFIX):
                continue  # a results collection is nobody's public collection
            source = remote.get(collection_id)
            items_url = None
            if source is not None and source.kind != OWN and source.url:
                items_url = f"{source.url.rstrip('/')}/collections/{quote(source.source_collection, safe='')}/items"
            found[collection_id] = Visible(collection_id, document, items_url)
        if caller is not None:
            own = results_collection_id(caller.user_id)
            found[own] = Visible(own, _results_collection(own, caller))
        return found

    def collection_ids_for_search(self, caller: Principal | None, base: str, asked: Sequence[str]) -> tuple[str, ...]:
        visible = {key: v for key, v in self.visible(caller, base).items() if v.remote_items_url is None}
        if caller is not None and caller.is_admin:
            for collection_id in asked:
                visible.setdefault(collection_id, Visible(collection_id, {}))
        if not asked:
            return tuple(visible)
        return tuple(collection_id for collection_id in asked if collection_id in visible)

    def collections(self, caller: Principal | None, base: str) -> dict[str, Any]:
        documents = [self._collection_document(v, base) for v in self.visible(caller, base).values()]
        return {"collections": documents, "links": [_link("self", f"{base}/collections", JSON),
                                                     _link("root", f"{base}/", JSON)]}

    def collection(self, caller: Principal | None, collection_id: str, base: str) -> dict[str, Any]:
        return self._collection_document(self._find(caller, collection_id, base), base)

    def conformance(self) -> dict[str, Any]:
        return {"conformsTo": CONFORMANCE}

    def queryables(self, caller: Principal | None, base: str, collection_id: str | None = None) -> dict[str, Any]:
        if collection_id is not None:
            collections: Sequence[str] = (self._find(caller, collection_id, base).id,)
            url = f"{base}/collections/{quote(collection_id, safe='')}/queryables"
        else:
            collections = self.collection_ids_for_search(caller, base, ())
            url = f"{base}/queryables"
        properties: dict[str, Any] = {
            "id": {"description": "Item id", "type": "string"},
            "collection": {"description": "Collection id", "type": "string"},
            "geometry": {"description": "Footprint", "$ref": "https://geojson.org/schema/Geometry.json"},
            "datetime": {"description": "Acquisition time", "type": "string", "format": "date-time"},
        }
        for name, kind in sorted(self._index.queryables(collections).items()):
            if name in properties or name in ("bbox", "start_datetime", "end_datetime"):
                continue
            properties[name] = {"type": "number" if kind == "DOUBLE" else "boolean" if kind == "BOOLEAN"
                                else "string"}
        return {"$schema": "https://json-schema.org/draft/2019-09/schema", "$id": url, "type": "object",
                "title": "Queryables", "properties": properties, "additionalProperties": True}

    # --- items ---------------------------------------------------------------------------------------------

    def search(self, caller: Principal | None, request: SearchRequest, base: str, *, method: str,
               query: Mapping[str, str] | None = None, body: dict[str, Any] | None = None) -> dict[str, Any]:
        collections = self.collection_ids_for_search(caller, base, request.collections)
        page = self._index.search(request.with_collections(collections)) if collections else SearchPage([], 0)
        links = [_link("root", f"{base}/", JSON), _link("self", f"{base}/search", GEOJSON)]
        if page.next_offset is not None:
            links.append(_next(f"{base}/search", method, page.next_offset, query, body))
        return self._feature_collection(page, request, base, links)

    def items(self, caller: Principal | None, collection_id: str, request: SearchRequest, base: str,
              query: Mapping[str, str]) -> dict[str, Any]:
        visible = self._find(caller, collection_id, base)
        if visible.remote_items_url is not None:
            raise NotFound(f"the items of {collection_id} are served by its own API: {visible.remote_items_url}")
        page = self._index.search(request.with_collections((visible.id,)))
        url = f"{base}/collections/{quote(collection_id, safe='')}/items"
        links = [_link("root", f"{base}/", JSON), _link("self", url, GEOJSON),
                 _link("collection", f"{base}/collections/{quote(collection_id, safe='')}", JSON)]
        if page.next_offset is not None:
            links.append(_next(url, "GET", page.next_offset, query, None))
        return self._feature_collection(page, request, base, links)

    def item(self, caller: Principal | None, collection_id: str, item_id: str, base: str) -> dict[str, Any]:
        visible = self._find(caller, collection_id, base)
        item = self._index.get_item(visible.id, item_id)
        if item is None:
            raise NotFound(f"collection {collection_id} has no item {item_id}")
        return _with_links(item, base)

    # --- Transactions and harvests ---------------------------------------------------------------------------

    def add_items(self, caller: Principal | None, collection_id: str, body: Any, base: str) -> list[str]:
        """POST: an Item or an ItemCollection; queued for the indexer (202). The item ids queued."""
        self._writable(caller, collection_id, base)
        items = body.get("features") if isinstance(body, dict) and body.get("type") == "FeatureCollection" \
            else [body]
        if not isinstance(items, list) or not items:
            raise BadRequest("the body must be a STAC Item or an ItemCollection")
        messages = []
        accepted_ns = time.time_ns()
        for item in items:
            try:
                validate_item(item, collection_id)
            except InvalidItem as invalid:
                raise BadRequest(f"item {item.get('id') if isinstance(item, dict) else '?'}: {invalid}") from None
            if len(json.dumps(item)) > self._max_item_bytes:
                raise BadRequest(f"item {item['id']}: larger than {self._max_item_bytes} bytes")
            messages.append(upsert(collection_id, item, accepted_ns))
        self._queue.send(messages)
        return [m.item_id for m in messages]

    def replace_item(self, caller: Principal | None, collection_id: str, item_id: str, body: Any,
                     base: str) -> None:
        if not isinstance(body, dict) or body.get("id") != item_id:
            raise BadRequest("the item's id must be the one in the path")
        self.add_items(caller, collection_id, body, base)

    def delete_item(self, caller: Principal | None, collection_id: str, item_id: str, base: str) -> None:
        self._writable(caller, collection_id, base)
        check_id(item_id, "the item id")
        if self._index.get_item(collection_id, item_id) is None:
            raise NotFound(f"collection {collection_id} has no item {item_id}")
        self._queue.send([delete(collection_id, item_id)])

    def harvest(self, caller: Principal | None, collection_id: str, body: Any, base: str) -> dict[str, Any]:
        """Copies the items of a remote STAC search (`url` of its `/search`, `search` body, `max_items`) into
        `collection_id`, page by page through the outbound guard; they reach the index by the ingest queue."""
        self._writable(caller, collection_id, base)
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            raise BadRequest("a harvest needs the url of a remote STAC API's /search")
        search = body.get("search") or {}
        if not isinstance(search, dict):
            raise BadRequest("search must be a STAC search body")
        try:
            max_items = min(int(body.get("max_items", self._harvest_max_items)), self._harvest_max_items)
            page_size = min(int(search.get("limit", 100)), 1000)
        except (TypeError, ValueError):
            raise BadRequest("max_items and search.limit must be integers") from None
        if self._remote_search is None:
            raise BadRequest("harvests are not configured")
        deadline = time.monotonic() + self._harvest_budget_s
        url, page_body = body["url"], {**search, "limit": page_size}  # page_body None: GET `url` as it is
        queued, rejected, accepted_ns, exhausted = 0, [], time.time_ns(), False
        while queued < max_items and time.monotonic() < deadline:
            page = self._remote_search.page(url, page_body, deadline - time.monotonic())
            messages = []
            for item in (page.get("features") or [])[: max_items - queued]:
                if isinstance(item, dict):  # a copy in our collection; where it came from stays in its links
                    item = {**item, "collection": collection_id}
                try:
                    validate_item(item, collection_id)
                except InvalidItem as invalid:
                    rejected.append({"id": item.get("id") if isinstance(item, dict) else None,
                                     "reason": str(invalid)})
                    continue
                messages.append(upsert(collection_id, item, accepted_ns))
            self._queue.send(messages)
            queued += len(messages)
            following = next((link for link in page.get("links", []) if link.get("rel") == "next"), None)
            if following is None or not following.get("href"):
                exhausted = True
                break
            url = following["href"]
            post = following.get("method", "GET").upper() == "POST"
            page_body = following.get("body", page_body) if post else None
        # `exhausted`: every matching item was copied; else call again with a narrower search
        return {"collection": collection_id, "queued": queued, "rejected": rejected, "exhausted": exhausted}

    # --- helpers -------------------------------------------------------------------------------------------

    def _writable(self, caller: Principal | None, collection_id: str, base: str) -> None:
        if caller is None:
            raise Forbidden("writing to the catalogue needs a sign-in")
        if not (caller.is_admin or CATALOG_WRITE_SCOPE in caller.scopes):
            raise Forbidden(f"writing to the catalogue needs the {CATALOG_WRITE_SCOPE} scope")
        visible = self._find(caller, collection_id, base)
        if visible.remote_items_url is not None or visible.id.startswith(RESULTS_PREFIX):
            raise Forbidden(f"the items of {collection_id} are not written through this API")

    def _find(self, caller: Principal | None, collection_id: str, base: str) -> Visible:
        visible = self.visible(caller, base).get(collection_id)
        if visible is None and caller is not None and caller.is_admin and collection_id.startswith(RESULTS_PREFIX):
            visible = Visible(collection_id, _results_collection(collection_id, None))
        if visible is None:
            raise NotFound(f"collection {collection_id} does not exist")
        return visible

    def _collection_document(self, visible: Visible, base: str) -> dict[str, Any]:
        document = copy.deepcopy(visible.document)
        document.setdefault("type", "Collection")
        document["stac_version"] = STAC_VERSION
        document.setdefault("license", "other")
        document.setdefault("extent", {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                                       "temporal": {"interval": [[None, None]]}})
        document.setdefault("description", document.get("title") or visible.id)
        url = f"{base}/collections/{quote(visible.id, safe='')}"
        links = [link for link in document.get("links", [])
                 if link.get("rel") not in ("self", "root", "parent", "items", "item", "child", QUERYABLES_REL)]
        links += [_link("self", url, JSON), _link("root", f"{base}/", JSON), _link("parent", f"{base}/", JSON),
                  _link(QUERYABLES_REL, f"{url}/queryables", "application/schema+json")]
        links.append(_link("items", visible.remote_items_url or f"{url}/items", GEOJSON))
        document["links"] = links
        return document

    def _feature_collection(self, page: SearchPage, request: SearchRequest, base: str,
                            links: list[dict[str, Any]]) -> dict[str, Any]:
        features = [_fields(_with_links(item, base), request) for item in page.items]
        return {"type": "FeatureCollection", "features": features, "links": links,
                "numberMatched": page.matched, "numberReturned": len(features)}


def _results_collection(collection_id: str, caller: Principal | None) -> dict[str, Any]:
    whose = f" of {caller.name or caller.email or caller.user_id}" if caller is not None else ""
    return {"type": "Collection", "id": collection_id, "stac_version": STAC_VERSION,
            "title": f"Job results and order products{whose}",
            "description": "Your openEO batch job results and order products; only you (and admins) see them.",
            "license": "other", "links": [],
            "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}}}


def _with_links(item: dict[str, Any], base: str) -> dict[str, Any]:
    collection_url = f"{base}/collections/{quote(item['collection'], safe='')}"
    own = [_link("self", f"{collection_url}/items/{quote(item['id'], safe='')}", GEOJSON),
           _link("parent", collection_url, JSON), _link("collection", collection_url, JSON),
           _link("root", f"{base}/", JSON)]
    kept = [link for link in item.get("links", []) if link.get("rel") not in ("self", "parent", "collection", "root")]
    # items are checked against the STAC 1.1 Item schema when indexed, and served as such
    return {**item, "stac_version": STAC_VERSION, "links": kept + own}


def _fields(item: dict[str, Any], request: SearchRequest) -> dict[str, Any]:
    """Fields extension: with `include`, the named (dotted) fields and what identifies an item (`ALWAYS_FIELDS`);
    with an empty `include`, the default set; `exclude` drops fields. A field both included and excluded is
    included, and so is an included field inside an excluded one."""
    include, exclude = request.include, request.exclude
    if include is None and not exclude:
        return item
    if include is None:
        result = copy.deepcopy(item)
    else:
        result = {}
        for path in (*ALWAYS_FIELDS, *(include or DEFAULT_FIELDS)):
            _copy_path(item, result, path.split("."))
    include = include or ()
    for path in exclude:
        if path not in include:
            _drop_path(result, path.split("."))
    for path in include:
        if any(path.startswith(f"{excluded}.") for excluded in exclude):
            _copy_path(item, result, path.split("."))
    return result


def _copy_path(source: dict[str, Any], target: dict[str, Any], parts: list[str]) -> None:
    head = parts[0]
    if head not in source:
        if len(parts) > 1 and head != "properties" and "properties" in source and head in source["properties"]:
            _copy_path(source, target, ["properties", *parts])
        elif len(parts) == 1 and "properties" in source and head in source["properties"]:
            target.setdefault("properties", {})[head] = source["properties"][head]
        return
    if len(parts) == 1 or not isinstance(source[head], dict):
        target[head] = copy.deepcopy(source[head])
        return
    _copy_path(source[head], target.setdefault(head, {}), parts[1:])


def _drop_path(target: dict[str, Any], parts: list[str]) -> None:
    head = parts[0]
    if head not in target:
        if len(parts) == 1 and isinstance(target.get("properties"), dict):
            target["properties"].pop(head, None)
        return
    if len(parts) == 1:
        target.pop(head, None)
    elif isinstance(target[head], dict):
        target[head] = dict(target[head])
        _drop_path(target[head], parts[1:])


def _link(rel: str, href: str, media_type: str) -> dict[str, Any]:
    return {"rel": rel, "href": href, "type": media_type}


def _next(url: str, method: str, offset: int, query: Mapping[str, str] | None,
          body: dict[str, Any] | None) -> dict[str, Any]:
    token = page_token(offset)
    if method == "POST":
        return {"rel": "next", "href": url, "type": GEOJSON, "method": "POST", "body": {**(body or {}), "token": token}}
    params = {**(query or {}), "token": token}
    return _link("next", f"{url}?{urlencode(params)}", GEOJSON)


__all__ = ["StacCatalogue", "NotFound", "Forbidden", "BadRequest", "InvalidSearch", "results_collection_id"]
