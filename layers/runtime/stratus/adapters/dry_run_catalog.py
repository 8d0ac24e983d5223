"""The dry run's catalog (`stratus.domain.estimate.DryRunCatalog`): own collections from the data bucket,
configured remote ones by id or alias through the collections configuration.

A remote collection's metadata is the cached one `/collections` shows (bands after renames); its items come
from a bounded search at the source's STAC API: the load's bbox and period, its `properties` translated by
`stratus.domain.property_filters` and the entry's default `filter` (as CQL2 when the API declares the Filter
extension, else as the Query extension, as the engine sends them), through the outbound guard with the
configuration's `allowed_private_hosts`, auth headers from Secrets Manager to the source's host only, within
`SEARCH_BUDGET_S` and `MAX_PAGES` pages of `PAGE_SIZE`. Whatever goes wrong raises `ItemsUnavailable`.
Static catalogs are not crawled here (their items are many documents): their loads are unknown to the dry run.
No raster libraries: this runs in the API function.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from stratus.adapters.s3_catalog import S3CatalogReader
from stratus.adapters.s3_collections import S3CollectionsStore
from stratus.adapters.stac_sources import MAX_DOCUMENT_BYTES, auth_headers
from stratus.collections_config import OWN, STAC_API, CollectionSource
from stratus.domain import property_filters
from stratus.domain.collection_metadata import openeo_collection
from stratus.domain.collection_refresh import SourceUnavailable
from stratus.domain.estimate import FoundItems, ItemSearch, ItemsUnavailable
from stratus.outbound import AllowList, OutboundFailed, OutboundGuard, OutboundRefused, Timeouts

SEARCH_BUDGET_S = 5.0  # one load's search, all pages: API Gateway gives the whole request 29 s
CONNECT_TIMEOUT_S = 2.0
PAGE_SIZE = 100
MAX_PAGES = 5  # 500 items; beyond, the source's `numberMatched` scales the dates counted
LANDING_CACHE_S = 300  # the landing page says where to search and which extensions the API has
_FILTER_CONFORMANCE = ("/filter", "#filter", "/item-search#filter")


class GuardedItemSearch:
    """Searches a configured `stac-api` source's items for the dry run (see the module docstring)."""

    def __init__(self, base_allow_list: str, secrets_client: Callable[[], Any], *,
                 guard_factory: Callable[[AllowList], OutboundGuard] = OutboundGuard,
                 budget_s: float = SEARCH_BUDGET_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._base_hosts = [h for h in base_allow_list.split(",") if h.strip()]
        self._secrets_client = secrets_client
        self._guard_factory = guard_factory
        self._budget_s = budget_s
        self._clock = clock
        self._landings: dict[str, tuple[float, dict[str, Any]]] = {}

    def search(self, source: CollectionSource, search: ItemSearch, *,
               allowed_private_hosts: Sequence[str]) -> FoundItems:
        if source.kind != STAC_API or not source.url:
            raise ItemsUnavailable("the dry run searches STAC APIs only")
        deadline = self._clock() + self._budget_s
        try:
            session = _Session(self._guard_factory(AllowList.parse([*self._base_hosts, *allowed_private_hosts])),
                               auth_headers(source, self._secrets_client), source.url, deadline, self._clock)
            root = source.url.rstrip("/")
            landing = self._landing(session, root)
            body = _search_body(source, search, takes_filter=_declares_filter(landing))
            search_url = _search_url(landing, root)
            try:
                return _collect(session, search_url, body)
            except _Refused as refused:
                if refused.status != 400 or not ({"filter", "query"} & set(body)):
                    raise
                # the API doesn't know the extension after all: the dry run counts unfiltered (an upper bound)
                body = {k: v for k, v in body.items() if k not in ("filter", "filter-lang", "query")}
                return _collect(session, search_url, body)
        except _Refused as refused:
            raise ItemsUnavailable(f"HTTP {refused.status}") from None
        except SourceUnavailable as error:
            raise ItemsUnavailable(str(error)) from None

    def _landing(self, session: _Session, root: str) -> dict[str, Any]:
        cached = self._landings.get(root)
        if cached and self._clock() - cached[0] < LANDING_CACHE_S:
            return cached[1]
        landing = session.exchange("GET", root)
        self._landings[root] = (self._clock(), landing)
        return landing


class DryRunCatalogReader:
    """`DryRunCatalog` over the own catalog, the collections configuration and its remote sources."""

    def __init__(self, own: S3CatalogReader, configured: S3CollectionsStore, searcher: GuardedItemSearch) -> None:
        self._own = own
        self._configured = configured
        self._searcher = searcher

    def collection(self, collection_id: str) -> dict[str, Any] | None:
        source = self._configured.config().resolve(collection_id)
        if source is None or source.kind == OWN:
            return self._own.collection(source.id if source is not None else collection_id)
        cached = self._configured.cached([source.id]).get(source.id)
        return openeo_collection(source, cached.document if cached is not None else None)

    def items(self, collection_id: str, search: ItemSearch) -> list[dict[str, Any]]:
        config = self._configured.config()
        source = config.resolve(collection_id)
        if source is None or source.kind == OWN:
            return self._own.items(source.id if source is not None else collection_id)
        return self._searcher.search(source, search, allowed_private_hosts=config.allowed_private_hosts)


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class _Session:
    """JSON requests to one source within one deadline; auth headers only to the source's host."""

    def __init__(self, guard: OutboundGuard, headers: Mapping[str, str], origin: str, deadline: float,
                 clock: Callable[[], float]) -> None:
        self._guard = guard
        self._headers = headers
        self._origin_host = urllib.parse.urlsplit(origin).netloc
        self._deadline = deadline
        self._clock = clock

    def exchange(self, method: str, url: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            raise SourceUnavailable("timed out")
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if urllib.parse.urlsplit(url).netloc == self._origin_host:
            headers.update(self._headers)
        timeouts = Timeouts(connect_s=min(CONNECT_TIMEOUT_S, remaining), read_s=remaining, budget_s=remaining)
        try:
            response = self._guard.request(method, url, headers=headers, timeouts=timeouts,
                                           body=json.dumps(body).encode() if body is not None else None,
                                           max_body_bytes=MAX_DOCUMENT_BYTES)
        except OutboundRefused as refused:
            raise SourceUnavailable(f"refused: {refused}") from None
        except OutboundFailed as failed:
            raise SourceUnavailable("timed out" if failed.timed_out else "could not connect") from None
        if response.status != 200:
            raise _Refused(response.status)
        if response.truncated:
            raise SourceUnavailable(f"a search page is larger than {MAX_DOCUMENT_BYTES} bytes")
        try:
            document = json.loads(response.body)
        except ValueError:
            raise SourceUnavailable("the response is not JSON") from None
        if not isinstance(document, dict):
            raise SourceUnavailable("the response is not a JSON object")
        return document


def _search_body(source: CollectionSource, search: ItemSearch, *, takes_filter: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"collections": [source.source_collection], "limit": PAGE_SIZE}
    if search.bbox is not None:
        body["bbox"] = list(search.bbox)
    if search.start is not None or search.end is not None:
        body["datetime"] = f"{_iso(search.start) if search.start else '..'}/{_iso(search.end) if search.end else '..'}"
    properties = {name: condition for name, condition in (search.properties or {}).items()
                  if isinstance(condition, Mapping)}
    if takes_filter:
        expression = property_filters.combined_cql2(properties, source.filter)
        if expression is not None:
            body["filter"], body["filter-lang"] = expression, "cql2-json"
        return body
    query = property_filters.combined_query(properties) or {}
    default = (property_filters.cql2_to_query(source.filter) if source.filter else None) or {}
    for name, operators in default.items():
        query[name] = {**operators, **query.get(name, {})}  # the user's own bound wins, as in the engine
    if query:
        body["query"] = query
    return body


def _collect(session: _Session, search_url: str, body: dict[str, Any]) -> FoundItems:
    """Up to `MAX_PAGES` pages of POST /search, following `next` links; the items and what the API matched."""
    items: list[dict[str, Any]] = []
    page = session.exchange("POST", search_url, body)
    matched = _matched(page)
    for number in range(1, MAX_PAGES + 1):
        features = [f for f in page.get("features") or [] if isinstance(f, dict)]
        items.extend(features)
        link = next((link for link in page.get("links") or [] if isinstance(link, Mapping)
                     and link.get("rel") == "next" and isinstance(link.get("href"), str)), None)
        if link is None or not features:
            return FoundItems(items, matched)
        if number == MAX_PAGES:
            break
        url = urllib.parse.urljoin(search_url, link["href"])
        if str(link.get("method", "GET")).upper() == "POST":
            next_body = link.get("body") if isinstance(link.get("body"), Mapping) else {}
            following = {**body, **next_body} if link.get("merge") else dict(next_body or body)
            page = session.exchange("POST", url, following)
        else:
            page = session.exchange("GET", url)
    # stopped at the cap: without a count from the API, at least one more page is there
    return FoundItems(items, matched if matched is not None else len(items) + PAGE_SIZE)


def _matched(page: Mapping[str, Any]) -> int | None:
    for value in (page.get("numberMatched"), (page.get("context") or {}).get("matched")):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _declares_filter(landing: Mapping[str, Any]) -> bool:
    declared = landing.get("conformsTo")
    return isinstance(declared, list) and any(str(c).endswith(_FILTER_CONFORMANCE) for c in declared)


def _search_url(landing: Mapping[str, Any], root: str) -> str:
    links = [link for link in landing.get("links") or [] if isinstance(link, Mapping)
             and link.get("rel") == "search" and isinstance(link.get("href"), str)]
    posts = [link for link in links if str(link.get("method", "")).upper() == "POST"]
    chosen = (posts or links or [None])[0]
    return urllib.parse.urljoin(root + "/", chosen["href"]) if chosen else f"{root}/search"


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
