"""The metadata cache of configured remote collections and its refresh.

`/collections` never waits on a remote API: it builds the metadata from what the cache holds. The refresh
(scheduled, on deployment, and `python -m stratus.admin refresh-collections`) fetches each `stac-api` and
`stac-catalog` entry's collection document and stores it; only successful fetches are written, so a source
that cannot be reached keeps its last cached document, and two refreshes at once can only both write fresh
documents.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from stratus.collections_config import OWN, CollectionsConfig, CollectionSource
from stratus.domain.collection_metadata import source_document_url
from stratus.observability import logger

PARALLEL_FETCHES = 4  # sources fetched at once: a slow source does not hold back the others


@dataclass(frozen=True)
class CachedDocument:
    document: dict[str, Any]  # the source's STAC collection document, as fetched
    fetched_at: str  # ISO 8601, UTC
    url: str  # where it was fetched from

    def to_json(self) -> dict[str, Any]:
        return {"document": self.document, "fetched_at": self.fetched_at, "url": self.url}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> CachedDocument:
        return cls(dict(value["document"]), str(value["fetched_at"]), str(value["url"]))


class SourceUnavailable(Exception):
    """The source's document could not be fetched or is not a STAC collection (the text is for operators)."""


class CollectionsConfigSource(Protocol):
    def config(self) -> CollectionsConfig: ...


class CollectionDocumentCache(Protocol):
    def get_many(self, collection_ids: Sequence[str]) -> dict[str, CachedDocument]: ...

    def put(self, collection_id: str, cached: CachedDocument) -> None: ...


class SourceFetcher(Protocol):
    def fetch(self, source: CollectionSource, *, allowed_private_hosts: Sequence[str]) -> dict[str, Any]:
        """The source's collection document; raises `SourceUnavailable`."""
        ...


@dataclass(frozen=True)
class RefreshOutcome:
    collection_id: str
    refreshed: bool
    detail: str  # "fetched from <url>" or why not (never a secret)


class CollectionRefresher:
    def __init__(self, configs: CollectionsConfigSource, cache: CollectionDocumentCache, fetcher: SourceFetcher,
                 *, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._configs = configs
        self._cache = cache
        self._fetcher = fetcher
        self._now = now

    def refresh(self, only: Sequence[str] = ()) -> list[RefreshOutcome]:
        """Fetches every remote entry (or those `only` names, by id or alias) and caches what was fetched."""
        config = self._configs.config()
        sources = [s for s in config.collections if s.kind != OWN]
        if only:
            wanted = {config.resolve(name).id for name in only if config.resolve(name) is not None}
            unknown = [name for name in only if config.resolve(name) is None]
            if unknown:
                raise KeyError(f"not configured: {', '.join(unknown)}")
            sources = [s for s in sources if s.id in wanted]
        if not sources:
            return []
        with ThreadPoolExecutor(max_workers=min(PARALLEL_FETCHES, len(sources))) as pool:
            return list(pool.map(lambda source: self._refresh_one(source, config), sources))

    def _refresh_one(self, source: CollectionSource, config: CollectionsConfig) -> RefreshOutcome:
        url = source_document_url(source)
        try:
            document = self._fetcher.fetch(source, allowed_private_hosts=config.allowed_private_hosts)
        except SourceUnavailable as error:
            logger.warning("collection source unavailable; the cached document stays",
                           extra={"collection_id": source.id, "url": url, "reason": str(error)})
            return RefreshOutcome(source.id, False, f"{url}: {error}")
        self._cache.put(source.id, CachedDocument(document, self._now().strftime("%Y-%m-%dT%H:%M:%SZ"), url))
        return RefreshOutcome(source.id, True, f"fetched from {url}")
