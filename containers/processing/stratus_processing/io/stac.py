"""Item search in the static STAC catalog of the data bucket (key layout: `stratus.catalog_layout`).

The catalog is plain JSON files: one collection document and one file per item. A search lists the
collection's items and filters them by bbox (WGS84) and datetime; fine for the demo and for
collections of a few thousand items (an index would replace the listing beyond that).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from affine import Affine
from botocore.exceptions import ClientError
from rasterio.crs import CRS
from stratus import catalog_layout
from stratus.errors import CollectionNotFoundException

from stratus_processing.cube import parse_utc
from stratus_processing.grid import Grid


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


@dataclass(frozen=True)
class BandInfo:
    name: str
    common_name: str | None = None
    center_wavelength: float | None = None


@dataclass(frozen=True)
class Collection:
    id: str
    document: dict[str, Any] = field(repr=False)

    @property
    def bands(self) -> list[BandInfo]:
        """The collection's bands in metadata order (summaries `eo:bands`, else `cube:dimensions`)."""
        eo_bands = (self.document.get("summaries") or {}).get("eo:bands")
        if eo_bands:
            return [BandInfo(b["name"], b.get("common_name"), b.get("center_wavelength")) for b in eo_bands]
        for dimension in (self.document.get("cube:dimensions") or {}).values():
            if dimension.get("type") == "bands":
                return [BandInfo(str(name)) for name in dimension.get("values", [])]
        return []

    def resolve_bands(self, requested: Sequence[str]) -> list[BandInfo]:
        """openEO `bands` semantics: a name matches a band name first, else all bands with that
        common name (in metadata order). Raises KeyError naming an unknown band."""
        bands = self.bands
        by_name = {b.name: b for b in bands}
        resolved: list[BandInfo] = []
        for wanted in requested:
            matches = [by_name[wanted]] if wanted in by_name else [b for b in bands if b.common_name == wanted]
            if not matches:
                raise KeyError(wanted)
            resolved += [b for b in matches if b not in resolved]
        return resolved


@dataclass(frozen=True)
class StacItem:
    id: str
    datetime: datetime
    bbox: tuple[float, float, float, float]  # WGS84
    properties: dict[str, Any] = field(repr=False)
    assets: dict[str, dict[str, Any]] = field(repr=False)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> StacItem:
        properties = document.get("properties") or {}
        instant = properties.get("datetime") or properties.get("start_datetime")
        return cls(document["id"], parse_utc(instant), _bbox_2d(document["bbox"]), properties,
                   document.get("assets") or {})

    def asset_crs(self, asset: str) -> CRS:
        meta = self.assets[asset]
        epsg = meta.get("proj:epsg", self.properties.get("proj:epsg"))
        if epsg is not None:
            return CRS.from_epsg(int(epsg))
        wkt = meta.get("proj:wkt2", self.properties.get("proj:wkt2"))
        if wkt:
            return CRS.from_wkt(wkt)
        raise ValueError(f"item '{self.id}' asset '{asset}' has no proj:epsg/proj:wkt2")

    def asset_grid(self, asset: str) -> Grid:
        meta = self.assets[asset]
        height, width = (meta.get("proj:shape") or self.properties["proj:shape"])[:2]
        transform = Affine(*(meta.get("proj:transform") or self.properties["proj:transform"])[:6])
        return Grid(self.asset_crs(asset), transform, int(width), int(height))

    def raster_band(self, asset: str) -> dict[str, Any]:
        """The asset's first `raster:bands` entry (nodata, scale, offset, data_type)."""
        entries = self.assets[asset].get("raster:bands") or [{}]
        return entries[0]

    def overlaps(self, start: datetime | None, end: datetime | None) -> bool:
        """openEO temporal filter: start included, end excluded, either side open when None."""
        return (start is None or self.datetime >= start) and (end is None or self.datetime < end)


def _bbox_2d(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    """STAC bboxes may carry elevations: [w, s, (min z), e, n, (max z)]."""
    if len(bbox) == 6:
        return bbox[0], bbox[1], bbox[3], bbox[4]
    return bbox[0], bbox[1], bbox[2], bbox[3]


def bboxes_intersect(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


class StacCatalog:
    def __init__(self, store: JsonStore) -> None:
        self._store = store

    def collection(self, collection_id: str) -> Collection:
        """Raises `CollectionNotFoundException` for an unknown id."""
        document = self._store.read_json(catalog_layout.collection_key(collection_id))
        if document is None:
            raise CollectionNotFoundException(identifier=collection_id)
        return Collection(collection_id, document)

    def search(self, collection_id: str, *, bbox: Sequence[float] | None = None,
               start: datetime | None = None, end: datetime | None = None) -> list[StacItem]:
        """Items whose WGS84 bbox intersects `bbox` and whose datetime lies in [start, end),
        ordered by datetime then id (so "the first item" is well defined)."""
        items = []
        for key in self._store.list_keys(catalog_layout.items_prefix(collection_id)):
            if not key.endswith(".json"):
                continue
            document = self._store.read_json(key)
            if document is None:
                continue
            item = StacItem.from_document(document)
            if item.overlaps(start, end) and (bbox is None or bboxes_intersect(item.bbox, bbox)):
                items.append(item)
        return sorted(items, key=lambda i: (i.datetime, i.id))
