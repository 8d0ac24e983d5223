"""STAC metadata in: the static catalog of the data bucket (`load_collection`), STAC APIs and static
STAC documents anywhere (`load_stac`), all read as `StacItem`s and `BandInfo`s.

Sources:
- `StacCatalog`: the back-end's own catalog, plain JSON files in the data bucket (key layout:
  `stratus.catalog_layout`). A search lists the collection's items and filters them by bbox
  (WGS84) and datetime; fine for collections of a few thousand items. A collection document there
  may instead point at a STAC API (a link `rel: "items"` or `rel: "search"` with an http(s) href,
  e.g. Earth Search's `sentinel-2-l2a`): its items then come from that API's `/search`.
- `open_stac_source(url)`: a STAC Item, an ItemCollection, a static Collection or Catalog (item and
  child links followed), or a STAC API collection (`.../collections/<id>`, searched through the
  API's `/search`, else its `/items`), by http(s) or s3:// URL.

Bands: a band is one single-band asset of an item. Its name is the asset's `eo:bands` (or STAC 1.1
`bands`) name, else the asset key; a request may name it by that name, by the asset key or by its
`common_name` (openEO `bands` semantics: a name wins over common names). Multi-band assets (e.g. a
true-colour `visual`) are not offered as bands.
"""

from __future__ import annotations

import json
import logging
import posixpath
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from affine import Affine
from botocore.exceptions import ClientError
from rasterio.crs import CRS
from stratus import catalog_layout
from stratus.domain import property_filters
from stratus.errors import CollectionNotFoundException
from stratus.outbound import (AllowList, HostNotResolved, OutboundFailed, OutboundGuard, OutboundRefused, Target,
                              Timeouts)

from stratus_processing.cube import isoformat_utc, parse_utc
from stratus_processing.deferred import cql2
from stratus_processing.grid import Grid

logger = logging.getLogger("stratus_processing")

# Items one search may return: a job over more is better split (or its extent narrowed) than left
# to page through a whole archive; also bounds a static catalog's item links we follow.
MAX_SEARCH_ITEMS = 10_000
# Items per STAC API page (APIs cap this themselves, typically at 100-1000).
SEARCH_PAGE_SIZE = 250
# Pages one search may read: the item limit at a small page size, with room for items the local
# filters (properties) drop.
MAX_SEARCH_PAGES = 4 * MAX_SEARCH_ITEMS // 100
# Levels of `child` links followed below a static catalog (catalog -> collection -> sub-collection).
MAX_CATALOG_DEPTH = 4
# Static item documents fetched at once: HTTP latency, not CPU, is what this hides.
FETCH_CONCURRENCY = 8
# HTTP: seconds per request, attempts for throttling/server errors/network failures, first backoff.
HTTP_TIMEOUT_S = 30
HTTP_ATTEMPTS = 4
HTTP_BACKOFF_S = 0.5
HTTP_CONNECT_TIMEOUT_S = 10  # seconds per connection attempt
HTTP_BUDGET_FACTOR = 4  # one request (connect, send, read the whole document) within this many read timeouts
MAX_REDIRECTS = 5
MAX_DOCUMENT_BYTES = 64 * 2**20  # a STAC API page of 250 items is a few MiB
_REDIRECT_STATUSES = (301, 302, 303, 307, 308)

_JSON_MEDIA_TYPES = ("application/json", "application/geo+json")
# Asset roles that are never data bands (STAC best practice roles); "data" is required besides.
_NON_DATA_ROLES = {"thumbnail", "overview", "visual", "metadata"}
_RASTER_MEDIA_HINTS = ("image/tiff", "image/x.geotiff", "application/x-geotiff", "image/vnd.stac.geotiff",
                       "image/jp2")


class StacReadError(Exception):
    """A STAC document could not be read or is not usable; the processes turn it into the openEO
    error of the argument it came from."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"can't read STAC metadata from {url}: {reason}")
        self.url = url
        self.reason = reason


class TooManyItemsError(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the extents match more than {limit} STAC items")
        self.limit = limit


# --- documents by URL ---------------------------------------------------------------------------

class JsonStore(Protocol):
    def read_json(self, key: str) -> dict[str, Any] | None:
        """The JSON document at `key`, or None when there is none."""

    def list_keys(self, prefix: str) -> Iterator[str]: ...


class S3JsonStore:
    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self.bucket = bucket

    def read_json(self, key: str) -> dict[str, Any] | None:
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        return json.loads(body)

    def list_keys(self, prefix: str) -> Iterator[str]:
        request = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            page = self._s3.list_objects_v2(**request)
            for obj in page.get("Contents", []):
                yield obj["Key"]
            if not page.get("IsTruncated"):
                return
            request["ContinuationToken"] = page["NextContinuationToken"]


class DirectoryJsonStore:
    """The catalog key layout on a local directory (`root/<key>`): benchmarks and local debugging."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def read_json(self, key: str) -> dict[str, Any] | None:
        path = self.root / key
        return json.loads(path.read_text()) if path.is_file() else None

    def list_keys(self, prefix: str) -> Iterator[str]:
        base = self.root / prefix
        if base.is_dir():
            yield from sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())


class DocumentReader:
    """Reads JSON documents by URL for `load_stac` and STAC API searches.

    - http(s) through `stratus.outbound.OutboundGuard`: the host is resolved once, refused unless all its
      addresses are public (or in `allow`; `allow_private_hosts` allows any) and the request goes to exactly
      the checked address (no DNS rebinding to the container's credentials endpoint). Redirects are
      followed by hand, each target checked and pinned like the first. Retries on throttling, server
      errors and network failures;
    - s3:// through the boto3 client, only for `s3_buckets` (the task role can read more than a
      user may: other users' results), or, with `any_s3_bucket` (the operator's configured sources),
      any bucket but `protected_buckets`; `requester_pays` objects are read with the reader paying;
    - local paths and file:// only with `allow_files` (tests, benchmarks).

    `headers` (e.g. a configured source's auth headers) go only to URLs of `headers_origin`
    (scheme, host and port), never to another host a link or redirect points at.
    """

    def __init__(self, *, s3_client: Any = None, s3_buckets: Sequence[str] = (), allow_private_hosts: bool = False,
                 allow: AllowList | None = None, allow_files: bool = False, timeout: float = HTTP_TIMEOUT_S,
                 guard: OutboundGuard | None = None, any_s3_bucket: bool = False,
                 protected_buckets: Sequence[str] = (), requester_pays: bool = False,
                 headers: Mapping[str, str] | None = None, headers_origin: str | None = None) -> None:
        self._s3 = s3_client
        self._s3_buckets = frozenset(s3_buckets)
        self._any_s3_bucket = any_s3_bucket
        self._protected_buckets = frozenset(protected_buckets)
        self._requester_pays = requester_pays
        self._headers = dict(headers or {})
        self._headers_origin = _origin(headers_origin) if headers_origin else None
        self._allow_files = allow_files
        self._timeout = timeout
        self._timeouts = Timeouts(connect_s=min(timeout, HTTP_CONNECT_TIMEOUT_S), read_s=timeout,
                                  budget_s=timeout * HTTP_BUDGET_FACTOR)
        if guard is None:
            guard = OutboundGuard(AllowList.everything() if allow_private_hosts else (allow or AllowList()))
        self._guard = guard

    @property
    def allow(self) -> AllowList:
        return self._guard.allow

    def for_source(self, *, allow: AllowList, protected_buckets: Sequence[str], requester_pays: bool = False,
                   headers: Mapping[str, str] | None = None, headers_origin: str | None = None) -> DocumentReader:
        """A reader for an operator-configured source: its own allow-list of private hosts, any S3 bucket
        but the deployment's protected ones, and the source's auth headers (for its origin only)."""
        return DocumentReader(s3_client=self._s3, allow_files=self._allow_files, timeout=self._timeout,
                              guard=OutboundGuard(allow, resolver=self._guard.resolver, ca_certs=self._guard.ca_certs),
                              any_s3_bucket=True, protected_buckets=protected_buckets,
                              requester_pays=requester_pays, headers=headers, headers_origin=headers_origin)

    def check_href(self, href: str) -> None:
        """Raise `ValueError` when `href` (a document or an asset) may not be read. Assets are read by GDAL,
        which resolves the host again: for them this is a check, not a pin."""
        parsed = urllib.parse.urlparse(href)
        if parsed.scheme in ("http", "https"):
            try:
                self._target(href)
            except HostNotResolved:
                pass  # perhaps for a moment; reading it fails on its own with a clear message
        elif parsed.scheme == "s3":
            if self._any_s3_bucket:
                if parsed.netloc in self._protected_buckets or not parsed.netloc:
                    raise ValueError(f"bucket {parsed.netloc!r} is not readable")
            elif parsed.netloc not in self._s3_buckets:
                raise ValueError(f"bucket {parsed.netloc!r} is not readable (readable: "
                                 f"{', '.join(sorted(self._s3_buckets)) or 'none'})")
        elif parsed.scheme in ("", "file"):
            if not self._allow_files:
                raise ValueError("only http(s):// and s3:// URLs are supported")
        else:
            raise ValueError(f"unsupported URL scheme {parsed.scheme!r}")

    def _target(self, url: str) -> Target:
        try:
            return self._guard.check(url)
        except HostNotResolved:
            raise
        except OutboundRefused as exc:
            raise ValueError(str(exc)) from None

    def read(self, url: str) -> dict[str, Any]:
        return self._request(url)

    def post(self, url: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._request(url, body)

    def _request(self, url: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme in ("http", "https"):
            document = self._http(url, body)
        else:
            try:
                self.check_href(url)
            except ValueError as exc:
                raise StacReadError(url, str(exc)) from None
            if parsed.scheme == "s3":
                document = self._read_s3(parsed.netloc, parsed.path.lstrip("/"), url)
            else:
                path = Path(urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else url)
                if not path.is_file():
                    raise StacReadError(url, "no such file")
                document = _parse_json(path.read_bytes(), url)
        if not isinstance(document, dict):
            raise StacReadError(url, "the document is not a JSON object")
        return document

    def _read_s3(self, bucket: str, key: str, url: str) -> Any:
        if self._s3 is None:
            raise StacReadError(url, "no S3 access is configured")
        payer = {"RequestPayer": "requester"} if self._requester_pays else {}
        try:
            body = self._s3.get_object(Bucket=bucket, Key=key, **payer)["Body"].read()
        except ClientError as exc:
            raise StacReadError(url, exc.response.get("Error", {}).get("Code", "S3 error")) from None
        return _parse_json(body, url)

    def _http(self, url: str, body: Mapping[str, Any] | None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/geo+json, application/json", "User-Agent": "stratus-processing"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        delay = HTTP_BACKOFF_S
        attempt = redirects = 0
        requested = url
        while True:
            attempt += 1
            try:
                try:
                    target = self._target(url)
                except ValueError as exc:
                    if url == requested:
                        raise StacReadError(url, str(exc)) from None
                    raise StacReadError(url, f"redirected to a URL that may not be read: {exc}") from None
                sent = {**self._headers, **headers} if self._headers and _origin(url) == self._headers_origin else headers
                response = self._guard.send(target, "POST" if data is not None else "GET", body=data,
                                            headers=sent, timeouts=self._timeouts,
                                            max_body_bytes=MAX_DOCUMENT_BYTES)
            except (HostNotResolved, OutboundFailed) as exc:
                if attempt < HTTP_ATTEMPTS:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise StacReadError(url, f"request failed: {exc}") from None
            if response.status in _REDIRECT_STATUSES and response.headers.get("Location"):
                redirects += 1
                if redirects > MAX_REDIRECTS:
                    raise StacReadError(requested, f"more than {MAX_REDIRECTS} redirects")
                location = urllib.parse.urljoin(url, response.headers["Location"])
                try:
                    self.check_href(location)
                except ValueError as exc:
                    raise StacReadError(location, f"redirected to a URL that may not be read: {exc}") from None
                if response.status == 303 or (response.status in (301, 302) and data is not None):
                    data = None  # what browsers and urllib do: the redirected request is a GET
                    headers.pop("Content-Type", None)
                url = location
                attempt -= 1  # a redirect is not a failed attempt
                continue
            if response.status in (429, 500, 502, 503, 504) and attempt < HTTP_ATTEMPTS:
                time.sleep(delay)
                delay *= 2
                continue
            if not 200 <= response.status < 300:
                raise HttpStatusError(url, response.status)
            if response.truncated:
                raise StacReadError(url, f"the document is larger than {MAX_DOCUMENT_BYTES // 2**20} MiB")
            return _parse_json(response.body, url)


def _origin(url: str) -> tuple[str, str, int | None]:
    parsed = urllib.parse.urlsplit(url)
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme)
    return parsed.scheme, (parsed.hostname or "").lower(), port


class HttpStatusError(StacReadError):
    def __init__(self, url: str, status: int) -> None:
        super().__init__(url, f"HTTP {status}")
        self.status = status


def _parse_json(body: bytes, url: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise StacReadError(url, "the response is not JSON") from None


def resolve_href(base: str | None, href: str) -> str:
    """An href relative to the document it appears in, made absolute (also for s3:// and paths,
    which `urljoin` leaves alone)."""
    if base is None or urllib.parse.urlparse(href).scheme or href.startswith("/"):
        return href
    parsed = urllib.parse.urlparse(base)
    if parsed.scheme in ("http", "https", "file"):
        return urllib.parse.urljoin(base, href)
    if parsed.scheme == "s3":
        path = posixpath.normpath(posixpath.join(posixpath.dirname(parsed.path), href))
        return f"s3://{parsed.netloc}{path}"
    return posixpath.normpath(posixpath.join(posixpath.dirname(base), href))


# --- bands and items ----------------------------------------------------------------------------

@dataclass(frozen=True)
class BandInfo:
    name: str
    common_name: str | None = None
    center_wavelength: float | None = None
    asset: str | None = None  # the item asset holding the band; None: the asset named like the band

    @property
    def asset_key(self) -> str:
        return self.asset or self.name


def bands_from_assets(assets: Mapping[str, Mapping[str, Any]]) -> list[BandInfo]:
    """The single-band raster data assets of an item (or a collection's `item_assets`) as bands.

    An asset is a band when it has the `data` role, or, lacking it, when its band metadata says it is
    one (Landsat C2's `item_assets` give `red` only the role `reflectance`, its QA assets `cloud`...).
    Where two assets hold a band of the same name (Earth Search's `red` COG and its `red-jp2` twin
    on a requester-pays bucket) the cloud-optimised one is the band: it is read by range requests,
    a JPEG 2000 file is not."""
    bands: dict[str, BandInfo] = {}
    for key, asset in assets.items():
        if not _is_band_asset(asset):
            continue
        entries = _band_entries(asset)
        entry = entries[0] if entries else {}
        band = BandInfo(str(entry.get("name") or key), entry.get("common_name") or entry.get("eo:common_name"),
                        entry.get("center_wavelength") or entry.get("eo:center_wavelength"), asset=key)
        twin = bands.get(band.name)
        if twin is None or (_is_jp2(assets[twin.asset_key]) and not _is_jp2(asset)):
            bands[band.name] = band
    return list(bands.values())


def _is_band_asset(asset: Mapping[str, Any]) -> bool:
    roles = set(asset.get("roles") or ["data"])
    media_type = str(asset.get("type") or "")
    if roles & _NON_DATA_ROLES or len(_band_entries(asset)) > 1:
        return False
    if media_type and not media_type.startswith(_RASTER_MEDIA_HINTS):
        return False
    if "data" in roles:
        return True
    described = asset.get("raster:bands") or _band_entries(asset)
    return bool(described) and bool(media_type)


def _is_jp2(asset: Mapping[str, Any]) -> bool:
    return str(asset.get("type") or "").startswith("image/jp2") or str(asset.get("href", "")).lower().endswith(".jp2")


def resolve_bands(bands: Sequence[BandInfo], requested: Sequence[str]) -> list[BandInfo]:
    """openEO `bands` semantics: a band name (or asset key) matches first, else all bands with that
    common name, in metadata order; no duplicates. Raises KeyError naming an unknown band."""
    by_name = {b.name: b for b in bands}
    for band in bands:
        by_name.setdefault(band.asset_key, band)
    resolved: list[BandInfo] = []
    for wanted in requested:
        matches = [by_name[wanted]] if wanted in by_name else [b for b in bands if b.common_name == wanted]
        if not matches:
            raise KeyError(wanted)
        resolved += [b for b in matches if b not in resolved]
    return resolved


def _band_entries(asset: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(asset.get("eo:bands") or asset.get("bands") or [])


@dataclass(frozen=True)
class Collection:
    id: str
    document: dict[str, Any] = field(repr=False)
    url: str | None = None  # where the document was read from, for relative links

    @property
    def bands(self) -> list[BandInfo]:
        """The collection's bands: from `item_assets`, else summaries `eo:bands` (asset named like
        the band), else `cube:dimensions`; ordered like the `bands` dimension when it lists them."""
        bands = bands_from_assets(self.document.get("item_assets") or {})
        if not bands:
            summaries = (self.document.get("summaries") or {}).get("eo:bands") or []
            bands = [BandInfo(b["name"], b.get("common_name"), b.get("center_wavelength")) for b in summaries
                     if isinstance(b, Mapping) and b.get("name")]
        order = self._dimension_band_names()
        if not bands:
            return [BandInfo(name) for name in order]
        if order:
            rank = {name: i for i, name in enumerate(order)}
            bands.sort(key=lambda b: rank.get(b.name, rank.get(b.asset_key, len(order))))
        return bands

    def resolve_bands(self, requested: Sequence[str]) -> list[BandInfo]:
        return resolve_bands(self.bands, requested)

    def link(self, *rels: str) -> str | None:
        """The href (absolute) of the first link with one of the relations, JSON links first."""
        links = [link for link in self.document.get("links") or [] if link.get("rel") in rels and link.get("href")]
        links.sort(key=lambda link: (rels.index(link["rel"]), link.get("type", "application/json") not in
                                     _JSON_MEDIA_TYPES))
        return resolve_href(self.url, links[0]["href"]) if links else None

    def _dimension_band_names(self) -> list[str]:
        for dimension in (self.document.get("cube:dimensions") or {}).values():
            if dimension.get("type") == "bands":
                return [str(name) for name in dimension.get("values", [])]
        return []


@dataclass(frozen=True)
class StacItem:
    id: str
    datetime: datetime
    bbox: tuple[float, float, float, float]  # WGS84
    properties: dict[str, Any] = field(repr=False)
    assets: dict[str, dict[str, Any]] = field(repr=False)
    end_datetime: datetime | None = None  # for items covering an interval

    @classmethod
    def from_document(cls, document: dict[str, Any], *, url: str | None = None) -> StacItem:
        """`url`: where the document was read from; relative asset hrefs are resolved against it."""
        properties = document.get("properties") or {}
        instant = properties.get("datetime") or properties.get("start_datetime")
        if not instant:
            raise ValueError(f"item '{document.get('id')}' has no datetime")
        end = properties.get("end_datetime") if not properties.get("datetime") else None
        base = url or _self_href(document)
        assets = {key: {**asset, "href": resolve_href(base, asset["href"])}
                  for key, asset in (document.get("assets") or {}).items() if isinstance(asset, Mapping)
                  and asset.get("href")}
        bbox = document.get("bbox")
        if not bbox:
            raise ValueError(f"item '{document.get('id')}' has no bbox")
        return cls(str(document["id"]), parse_utc(instant), _bbox_2d(bbox), properties, assets,
                   parse_utc(end) if end else None)

    @property
    def bands(self) -> list[BandInfo]:
        return bands_from_assets(self.assets)

    def asset_for(self, band: BandInfo) -> str | None:
        """The key of the item's asset holding `band`, None when the item lacks it (a cloud-optimised
        asset before a JPEG 2000 twin of the same band)."""
        if band.asset_key in self.assets:
            return band.asset_key
        holding = [key for key, asset in self.assets.items()
                   if len(entries := _band_entries(asset)) == 1 and entries[0].get("name") == band.name]
        holding.sort(key=lambda key: _is_jp2(self.assets[key]))
        return holding[0] if holding else None

    def gdal_options(self, asset: str) -> dict[str, str]:
        """GDAL settings reading the asset needs: the requester pays for an s3:// object whose asset
        (or item) says `storage:requester_pays` (Landsat C2 on AWS)."""
        meta = self.assets[asset]
        if not str(meta.get("href", "")).startswith("s3://"):
            return {}
        if meta.get("storage:requester_pays", self.properties.get("storage:requester_pays")) is True:
            return {"AWS_REQUEST_PAYER": "requester"}
        return {}

    def asset_crs(self, asset: str) -> CRS | None:
        meta = self.assets[asset]
        code = meta.get("proj:code", self.properties.get("proj:code"))
        if code:
            return CRS.from_user_input(code)
        epsg = meta.get("proj:epsg", self.properties.get("proj:epsg"))
        if epsg is not None:
            return CRS.from_epsg(int(epsg))
        wkt = meta.get("proj:wkt2", self.properties.get("proj:wkt2"))
        return CRS.from_wkt(wkt) if wkt else None

    def asset_grid(self, asset: str) -> Grid | None:
        """The asset's pixel grid from the projection extension; None when the metadata lacks it
        (the reader then asks the file)."""
        meta = self.assets[asset]
        shape = meta.get("proj:shape") or self.properties.get("proj:shape")
        transform = meta.get("proj:transform") or self.properties.get("proj:transform")
        crs = self.asset_crs(asset)
        if not shape or not transform or crs is None:
            return None
        height, width = shape[:2]
        return Grid(crs, Affine(*transform[:6]), int(width), int(height))

    def raster_band(self, asset: str) -> dict[str, Any]:
        """nodata, scale, offset, data_type of the asset's (first) band: `raster:bands` (STAC 1.0) or
        the STAC 1.1 fields on the band or asset."""
        meta = self.assets[asset]
        entries = meta.get("raster:bands") or [{}]
        band = dict(entries[0])
        stac11 = {**meta, **(_band_entries(meta)[0] if _band_entries(meta) else {})}
        for key, source in (("nodata", "nodata"), ("scale", "raster:scale"), ("offset", "raster:offset"),
                            ("data_type", "data_type")):
            if key not in band and source in stac11:
                band[key] = stac11[source]
        return band

    def overlaps(self, start: datetime | None, end: datetime | None) -> bool:
        """openEO temporal filter: start included, end excluded, either side open when None; an
        item covering an interval matches when the intervals overlap."""
        last = self.end_datetime or self.datetime
        return (start is None or last >= start) and (end is None or self.datetime < end)


def _self_href(document: Mapping[str, Any]) -> str | None:
    for link in document.get("links") or []:
        if link.get("rel") == "self" and link.get("href"):
            return str(link["href"])
    return None


def _bbox_2d(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    """STAC bboxes may carry elevations: [w, s, (min z), e, n, (max z)]."""
    if len(bbox) == 6:
        return bbox[0], bbox[1], bbox[3], bbox[4]
    return bbox[0], bbox[1], bbox[2], bbox[3]


def bboxes_intersect(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def sort_items(items: Sequence[StacItem]) -> list[StacItem]:
    """By datetime then id, so "the first item" is well defined, without duplicate ids."""
    unique = {item.id: item for item in items}
    return sorted(unique.values(), key=lambda i: (i.datetime, i.id))


ItemFilter = Callable[[StacItem], bool]


@dataclass(frozen=True)
class SearchRequest:
    """What to look for: bbox in WGS84, [start, end) (either may be None), and the item filters a
    STAC API may apply: `filter` (CQL2-JSON, Filter extension) or else `query` (Query extension);
    `accept` is the exact filter, applied to every item whatever the source did."""

    bbox: tuple[float, float, float, float] | None = None
    start: datetime | None = None
    end: datetime | None = None
    query: dict[str, Any] | None = None
    accept: ItemFilter | None = None
    filter: dict[str, Any] | None = None

    def matches(self, item: StacItem) -> bool:
        return (item.overlaps(self.start, self.end) and (self.bbox is None or bboxes_intersect(item.bbox, self.bbox))
                and (self.accept is None or self.accept(item)))

    def api_body(self, collection_id: str | None, *, use_filter: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"limit": SEARCH_PAGE_SIZE}
        if collection_id:
            body["collections"] = [collection_id]
        if self.bbox is not None:
            body["bbox"] = list(self.bbox)
        if self.start is not None or self.end is not None:
            body["datetime"] = (f"{isoformat_utc(self.start) if self.start else '..'}/"
                                f"{isoformat_utc(self.end) if self.end else '..'}")
        if use_filter and self.filter:
            body["filter"] = self.filter
            body["filter-lang"] = "cql2-json"
        elif self.query:
            body["query"] = self.query
        return body


# --- STAC APIs ----------------------------------------------------------------------------------

class StacApi:
    """Item search in a STAC API: POST `/search` (GET when the API refuses POST), or the
    collection's OGC `/items` endpoint when there is no search; follows `next` links."""

    def __init__(self, documents: DocumentReader, *, search_url: str | None, items_url: str | None = None,
                 root_url: str | None = None, landing: Mapping[str, Any] | None = None,
                 default_filter: Mapping[str, Any] | None = None) -> None:
        """`root_url`: the landing page, whose `conformsTo` tells whether the API takes CQL2 filters (`landing`:
        that page, when the caller has read it already);
        `default_filter`: a CQL2-JSON filter every item must pass (a configured source's), sent to an API that
        declares the Filter extension and always checked here too."""
        if not search_url and not items_url:
            raise ValueError("a STAC API needs a search or an items endpoint")
        self._documents = documents
        self.search_url = search_url
        self.items_url = items_url
        self.root_url = root_url
        self._conformance: frozenset[str] | None = None
        if landing is not None:
            declared = landing.get("conformsTo")
            self._conformance = frozenset(str(c) for c in declared) if isinstance(declared, list) else frozenset()
        self._default_filter = item_filter(default_filter) if default_filter else None
        self._default_cql2 = dict(default_filter) if default_filter else None

    def search(self, collection_id: str | None, request: SearchRequest) -> list[StacItem]:
        takes_filter = self.search_url is not None and self._conforms_to(_FILTER_CONFORMANCE)
        body = request.api_body(collection_id, use_filter=bool(request.filter) and takes_filter)
        if self._default_cql2 is not None and takes_filter:
            own = body.get("filter")
            body["filter"] = {"op": "and", "args": [own, self._default_cql2]} if own else dict(self._default_cql2)
            body["filter-lang"] = "cql2-json"
        elif self._default_cql2 is not None:
            # the Query extension takes what of the default it can express; the user's own bound wins where both
            # constrain one property with one operator (the default is still checked on every item)
            for name, operators in (property_filters.cql2_to_query(self._default_cql2) or {}).items():
                query = body.setdefault("query", {})
                query[name] = {**operators, **query.get(name, {})}
        if "filter" in body or "query" in body:
            try:
                return self._search(body, request)
            except HttpStatusError as exc:
                if exc.status != 400:
                    raise
                # The API doesn't know the extension after all: filter on our side only.
                logger.info("STAC API refused the item filter of %s; filtering items locally", body)
                body = {k: v for k, v in body.items() if k not in ("filter", "filter-lang", "query")}
        return self._search(body, request)

    def _conforms_to(self, classes: tuple[str, ...]) -> bool:
        """Whether the API's landing page declares one of the conformance classes (by their ending,
        any version)."""
        if self._conformance is None:
            self._conformance = frozenset()
            if self.root_url:
                try:
                    declared = self._documents.read(self.root_url).get("conformsTo")
                except StacReadError:
                    declared = None
                if isinstance(declared, list):
                    self._conformance = frozenset(str(c) for c in declared)
        return any(c.endswith(suffix) for c in self._conformance for suffix in classes)

    def _search(self, body: dict[str, Any], request: SearchRequest) -> list[StacItem]:
        items: list[StacItem] = []
        for url, page in self._pages(body):
            for feature in page.get("features") or []:
                item = _item_or_none(feature, url, read_from=False)
                if item is not None and request.matches(item) and (
                        self._default_filter is None or self._default_filter(item)):
                    items.append(item)
            if len(items) > MAX_SEARCH_ITEMS:
                raise TooManyItemsError(MAX_SEARCH_ITEMS)
        return sort_items(items)

    def _pages(self, body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        if self.search_url:
            url, page = self.search_url, self._first_search_page(body)
        else:
            url = _with_query(self.items_url, _get_parameters(body, items_endpoint=True))
            page = self._documents.read(url)
        seen = {json.dumps([url, body], sort_keys=True)}
        pages = 0
        while True:
            yield url, page
            pages += 1
            link = next((link for link in page.get("links") or [] if link.get("rel") == "next" and link.get("href")),
                        None)
            if link is None or not (page.get("features") or []):
                return
            url = resolve_href(url, link["href"])
            if str(link.get("method", "GET")).upper() == "POST":
                next_body = link.get("body") or {}
                body = {**body, **next_body} if link.get("merge") else dict(next_body or body)
                key = json.dumps([url, body], sort_keys=True)
                page = None if key in seen else self._documents.post(url, body)
            else:
                key = json.dumps([url, None])
                page = None if key in seen else self._documents.read(url)
            if page is None:
                return  # a `next` link pointing back at a page already read: the API's paging is broken
            if pages >= MAX_SEARCH_PAGES:
                raise TooManyItemsError(MAX_SEARCH_ITEMS)
            seen.add(key)

    def _first_search_page(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._documents.post(self.search_url, body)
        except HttpStatusError as exc:
            if exc.status not in (404, 405):
                raise
            return self._documents.read(_with_query(self.search_url, _get_parameters(body)))


def item_filter(cql2_json: Mapping[str, Any]) -> ItemFilter:
    """A CQL2-JSON filter as a test of one item (evaluated by the `cql2` library); raises `ValueError`
    for a filter that isn't valid CQL2."""
    try:
        expression = cql2.Expr(dict(cql2_json))
        expression.validate()
    except Exception as exc:  # noqa: BLE001 - cql2 raises its own error types
        raise ValueError(f"not a valid CQL2-JSON filter: {exc}") from None

    def matches(item: StacItem) -> bool:
        return bool(expression.matches({"type": "Feature", "id": item.id, "bbox": list(item.bbox),
                                        "properties": item.properties}))
    return matches


# The Filter extension of STAC API item search with CQL2 in JSON (any version).
_FILTER_CONFORMANCE = ("/item-search#filter",)


def _get_parameters(body: Mapping[str, Any], *, items_endpoint: bool = False) -> dict[str, str]:
    parameters = {"limit": str(body["limit"])}
    if body.get("collections") and not items_endpoint:
        parameters["collections"] = ",".join(body["collections"])
    if body.get("bbox"):
        parameters["bbox"] = ",".join(repr(float(v)) for v in body["bbox"])
    if body.get("datetime"):
        parameters["datetime"] = body["datetime"]
    if body.get("query") and not items_endpoint:
        parameters["query"] = json.dumps(body["query"])
    if body.get("filter"):
        parameters["filter"] = json.dumps(body["filter"])
        parameters["filter-lang"] = "cql2-json"
    return parameters


def _with_query(url: str, parameters: Mapping[str, str]) -> str:
    parsed = urllib.parse.urlparse(url)
    query = dict(urllib.parse.parse_qsl(parsed.query))
    query.update(parameters)
    return urllib.parse.urlunparse(parsed._replace(query=urllib.parse.urlencode(query)))


def _item_or_none(document: Any, url: str | None, *, read_from: bool = True) -> StacItem | None:
    """Items lacking a datetime, bbox or id can't be placed in a cube: skipped (and logged).
    `read_from`: `url` is the item document's own location (not a search page that listed it)."""
    try:
        return StacItem.from_document(document, url=url if read_from else (_self_href(document) or url))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        logger.warning("Skipping an unusable STAC item from %s: %s", url, exc)
        return None


# --- the back-end's own catalog (load_collection) ------------------------------------------------

@dataclass(frozen=True)
class CatalogCollection:
    """A collection `load_collection` names, opened: its bands and how to search its items."""

    id: str
    # The collection's bands; None when only its items tell (a static catalog without `item_assets`).
    bands: list[BandInfo] | None
    search: Callable[[SearchRequest], list[StacItem]] = field(repr=False)
    # Raises `ValueError` for an asset href that may not be read; None: the deployment's own data.
    check_href: Callable[[str], None] | None = field(default=None, repr=False)
    renames: Mapping[str, str] = field(default_factory=dict)  # band renames (already applied to `bands`)

    def bands_of(self, items: Sequence[StacItem]) -> list[BandInfo]:
        """The collection's bands, else those of the items (in order of first appearance)."""
        if self.bands is not None:
            return self.bands
        seen: dict[str, BandInfo] = {}
        for item in items:
            for band in item.bands:
                seen.setdefault(band.name, band)
        return renamed_bands(list(seen.values()), self.renames)


def renamed_bands(bands: Sequence[BandInfo], renames: Mapping[str, str]) -> list[BandInfo]:
    """A configuration's band renames (openEO name -> asset key) applied: the renamed bands in the
    configuration's order, then the bands of assets it doesn't rename; common names are kept."""
    if not renames:
        return list(bands)
    by_asset = {band.asset_key: band for band in bands}
    renamed = [BandInfo(name, by_asset[key].common_name if key in by_asset else None,
                        by_asset[key].center_wavelength if key in by_asset else None, asset=key)
               for name, key in renames.items()]
    return renamed + [band for band in bands if band.asset_key not in set(renames.values())]


class CollectionIndex(Protocol):
    """The catalogue index (`stratus.adapters.parquet_index.ParquetIndex`)."""

    def items(self, collection_id: str, *, bbox: Sequence[float] | None, start: datetime | None,
              end: datetime | None) -> list[dict[str, Any]] | None: ...


class StacCatalog:
    def __init__(self, store: JsonStore, *, documents: DocumentReader | None = None,
                 index: CollectionIndex | None = None) -> None:
        """`index`: where own collections are searched when they are indexed (else their item files are listed)."""
        self._store = store
        self.documents = documents or DocumentReader()
        self._index = index

    def open(self, name: str) -> CatalogCollection:
        """The own collection `name` of the data bucket; raises `CollectionNotFoundException`."""
        return self._open_own(name)

    def _open_own(self, collection_id: str, renames: Mapping[str, str] | None = None,
                  name: str | None = None) -> CatalogCollection:
        collection = self.collection(collection_id)
        return CatalogCollection(name or collection.id, renamed_bands(collection.bands, renames or {}),
                                 lambda request: self._search(collection, request))

    def collection(self, collection_id: str) -> Collection:
        """Raises `CollectionNotFoundException` for an unknown id."""
        document = self._store.read_json(catalog_layout.collection_key(collection_id))
        if document is None:
            raise CollectionNotFoundException(identifier=collection_id)
        return Collection(collection_id, document)

    def search(self, collection_id: str, *, bbox: Sequence[float] | None = None,
               start: datetime | None = None, end: datetime | None = None,
               request: SearchRequest | None = None) -> list[StacItem]:
        """Items whose WGS84 bbox intersects `bbox` and whose datetime lies in [start, end) (and that
        `request.accept`), ordered by datetime then id."""
        if request is None:
            request = SearchRequest(bbox=tuple(bbox) if bbox is not None else None, start=start, end=end)
        return self._search(self.collection(collection_id), request)

    def _search(self, collection: Collection, request: SearchRequest) -> list[StacItem]:
        collection_id = collection.id
        api = api_of(collection, self.documents)
        if api is not None:
            return api.search(collection.document.get("id", collection_id), request)
        if self._index is not None:
            # bbox and time narrow the candidates in the index; `matches` applies the exact rules as below
            documents = self._index.items(collection_id, bbox=request.bbox, start=request.start, end=request.end)
            if documents is not None:
                return sort_items([item for item in map(StacItem.from_document, documents) if request.matches(item)])
        items = []
        for key in self._store.list_keys(catalog_layout.items_prefix(collection_id)):
            if not key.endswith(".json"):
                continue
            document = self._store.read_json(key)
            if document is None:
                continue
            item = StacItem.from_document(document)
            if request.matches(item):
                items.append(item)
        return sort_items(items)


def api_of(collection: Collection, documents: DocumentReader) -> StacApi | None:
    """The STAC API serving the collection's items: its `search` link, or its `items` endpoint
    (whose API root, the collection's `root` link, may declare a `search`); None for a static one."""
    search = collection.link("search")
    items = collection.link("items")
    if search is None and items is None:
        return None
    if search is None:
        search = _search_endpoint_of_root(collection.link("root"), documents)
    return StacApi(documents, search_url=search, items_url=items, root_url=collection.link("root"))


def _search_endpoint_of_root(root_url: str | None, documents: DocumentReader) -> str | None:
    if root_url is None:
        return None
    try:
        root = documents.read(root_url)
    except StacReadError:
        return None
    return Collection("root", root, root_url).link("search")


# --- load_stac's sources --------------------------------------------------------------------------

@dataclass
class StacSource:
    """What a `load_stac` URL points at: the items to search and the bands they offer."""

    url: str
    collection: Collection | None
    search: Callable[[SearchRequest], list[StacItem]]

    def bands(self, items: Sequence[StacItem]) -> list[BandInfo]:
        """The collection's bands when it describes them, else those of the items (in order of
        first appearance)."""
        if self.collection is not None and self.collection.bands:
            return self.collection.bands
        seen: dict[str, BandInfo] = {}
        for item in items:
            for band in item.bands:
                seen.setdefault(band.name, band)
        return list(seen.values())


def open_stac_source(url: str, documents: DocumentReader) -> StacSource:
    """Read the document at `url` and tell how to search it (see the module docstring)."""
    document = documents.read(url)
    kind = document.get("type")
    if kind == "Feature":
        item = _item_or_fail(document, url)
        return StacSource(url, None, lambda request: [item] if request.matches(item) else [])
    if kind == "FeatureCollection":
        items = sort_items([i for f in document.get("features") or [] if (i := _item_or_none(f, url, read_from=False))])
        return StacSource(url, None, lambda request: [i for i in items if request.matches(i)])
    if kind in ("Collection", "Catalog"):
        collection = Collection(str(document.get("id", "")), document, url)
        api = api_of(collection, documents) if kind == "Collection" else None
        if api is not None:
            return StacSource(url, collection, lambda request: api.search(collection.id, request))
        return StacSource(url, collection if kind == "Collection" else None,
                          lambda request: _static_items(collection, documents, request))
    raise StacReadError(url, f"expected a STAC Item, ItemCollection, Collection or Catalog, "
                                            f"got type {kind!r}")


def _item_or_fail(document: dict[str, Any], url: str) -> StacItem:
    try:
        return StacItem.from_document(document, url=url)
    except (KeyError, TypeError, ValueError) as exc:
        raise StacReadError(url, f"not a usable STAC item ({exc})") from None


def _static_items(root: Collection, documents: DocumentReader, request: SearchRequest) -> list[StacItem]:
    """The items linked from a static catalog or collection (children followed), filtered."""
    item_urls: list[str] = []
    pending = [(root, 0)]
    visited = {root.url}
    while pending:
        node, depth = pending.pop(0)
        item_urls += [resolve_href(node.url, link["href"]) for link in node.document.get("links") or []
                      if link.get("rel") == "item" and link.get("href")]
        if len(item_urls) > MAX_SEARCH_ITEMS:
            raise TooManyItemsError(MAX_SEARCH_ITEMS)
        if depth >= MAX_CATALOG_DEPTH:
            continue
        for link in node.document.get("links") or []:
            if link.get("rel") == "child" and link.get("href"):
                child_url = resolve_href(node.url, link["href"])
                if child_url not in visited:
                    visited.add(child_url)
                    child = documents.read(child_url)
                    pending.append((Collection(str(child.get("id", "")), child, child_url), depth + 1))

    def fetch(item_url: str) -> StacItem | None:
        return _item_or_none(documents.read(item_url), item_url)

    with ThreadPoolExecutor(max_workers=FETCH_CONCURRENCY, thread_name_prefix="stac") as pool:
        items = [item for item in pool.map(fetch, dict.fromkeys(item_urls)) if item is not None]
    return sort_items([item for item in items if request.matches(item)])


def most_common_crs(items: Sequence[StacItem], assets: Callable[[StacItem], str | None]) -> CRS | None:
    """The CRS most of the items' assets are in (ties: the earliest item's)."""
    crss = [crs for item in items if (key := assets(item)) is not None and (crs := item.asset_crs(key)) is not None]
    if not crss:
        return None
    counts = Counter(crs.to_wkt() for crs in crss)
    best = max(counts.values())
    return next(crs for crs in crss if counts[crs.to_wkt()] == best)
