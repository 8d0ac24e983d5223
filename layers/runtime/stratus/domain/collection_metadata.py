"""openEO collection metadata for a configured remote collection (`stratus.collections_config`), built from
the source's STAC collection document and its `item_assets`.

Pure functions over JSON: the API lists what the metadata cache holds and never fetches; the refresh
(`stratus.domain.collection_refresh`) fills the cache. Band names are the openEO names users type: the
config's renames (`bands`: openEO name -> asset key) first, in the config's order, then every other
single-band raster asset under its `eo:bands` name (else its key). Assets that are no bands are left out:
non-raster media types, thumbnails, overviews, metadata, multi-band visuals, and JPEG 2000 twins of a
GeoTIFF asset of the same band (Earth Search's `red-jp2` beside `red`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from stratus.collections_config import STAC_API, CollectionSource

STAC_VERSION = "1.0.0"
DATACUBE_EXTENSION = "https://stac-extensions.github.io/datacube/v2.2.0/schema.json"
EO_EXTENSION = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
WGS84 = 4326
# source links that name the source's own API tree; ours replace them (`via`/`related` keep the way back)
SOURCE_TREE_RELS = {"self", "root", "parent", "child", "item", "items", "collection", "search",
                    "http://www.opengis.net/def/rel/ogc/1.0/queryables", "aggregate", "aggregations"}
NO_BAND_ROLES = {"thumbnail", "overview", "metadata", "visual"}
_GEOTIFF = ("image/tiff", "image/geotiff", "image/vnd.stac.geotiff")
_RASTER = (*_GEOTIFF, "image/jp2", "application/x-hdf", "application/x-netcdf")
# item properties of optical collections (EO extension) that `properties` filters use: the cloud cover
# of a scene in percent; summaries rarely state it, so its full range is offered
CLOUD_COVER_RANGE = {"minimum": 0, "maximum": 100}
SOURCE_FIELD = "stratus:source"
ALIASES_FIELD = "stratus:aliases"


def source_document_url(source: CollectionSource) -> str:
    """Where the refresh reads the source's collection document."""
    if source.kind == STAC_API:
        return f"{source.url.rstrip('/')}/collections/{source.source_collection}"
    return source.url or ""


def collection_bands(source: CollectionSource, document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The bands as `eo:bands` entries (openEO name, common name, wavelengths, description, gsd) in the
    order described in the module docstring."""
    assets = document.get("item_assets") or {}
    summary_bands = [b for b in (document.get("summaries") or {}).get("eo:bands") or [] if isinstance(b, Mapping)]
    by_asset: dict[str, dict[str, Any]] = {}
    seen_names: dict[str, str] = {}  # band identity -> asset key, for dropping JPEG 2000 twins
    for key, asset in assets.items():
        if not isinstance(asset, Mapping) or not _is_band_asset(asset):
            continue
        entries = list(asset.get("eo:bands") or asset.get("bands") or [])
        if len(entries) > 1:
            continue
        band = _band_entry(key, asset, entries[0] if entries else {}, summary_bands)
        # without eo:bands a band is named by its key: Earth Search's `scl-jp2` is the twin of `scl`
        identity = band["name"] if entries or _is_geotiff(asset) else key.removesuffix("-jp2")
        twin = seen_names.get(identity)
        if twin is not None:
            if _is_geotiff(assets[twin]) or not _is_geotiff(asset):
                continue
            del by_asset[twin]
        seen_names[identity] = key
        by_asset[key] = band
    if not by_asset and not assets:  # no item_assets: the summaries' bands, each in the asset of its name
        by_asset = {b["name"]: _clean_band(b) for b in summary_bands if b.get("name")}
    renamed = []
    for openeo_name, asset_key in source.bands.items():
        band = by_asset.pop(asset_key, None) or {"name": asset_key}
        renamed.append({**band, "name": openeo_name, "stratus:asset": asset_key})
    return renamed + [{**band, "stratus:asset": key} for key, band in by_asset.items()]


def _is_band_asset(asset: Mapping[str, Any]) -> bool:
    roles = set(asset.get("roles") or ["data"])
    if roles & NO_BAND_ROLES:
        return False
    media_type = str(asset.get("type") or "")
    return not media_type or media_type.startswith(_RASTER)


def _is_geotiff(asset: Mapping[str, Any]) -> bool:
    media_type = str(asset.get("type") or "")
    return not media_type or media_type.startswith(_GEOTIFF)


def _band_entry(key: str, asset: Mapping[str, Any], entry: Mapping[str, Any],
                summary_bands: list[Mapping[str, Any]]) -> dict[str, Any]:
    name = str(entry.get("name") or key)
    band = _clean_band(entry)
    band["name"] = name
    if "common_name" not in band:
        # Landsat's item_assets carry no eo:bands; its summaries do, under sensor band ids (OLI_B4) whose
        # common names are the asset keys (red)
        if any(b.get("common_name") == key for b in summary_bands):
            band["common_name"] = key
    if "description" not in band and asset.get("title"):
        band["description"] = str(asset["title"])
    resolution = asset.get("gsd")
    raster = asset.get("raster:bands") or []
    if resolution is None and raster and isinstance(raster[0], Mapping):
        resolution = raster[0].get("spatial_resolution")
    if isinstance(resolution, (int, float)):
        band["gsd"] = resolution
    return band


def _clean_band(entry: Mapping[str, Any]) -> dict[str, Any]:
    fields = ("name", "common_name", "description", "center_wavelength", "full_width_half_max")
    return {f: entry[f] for f in fields if entry.get(f) is not None}


def openeo_collection(source: CollectionSource, document: Mapping[str, Any] | None, *,
                      fetched_at: str | None = None) -> dict[str, Any]:
    """The full openEO metadata of a configured remote collection: from its cached source `document`, or from
    the configuration alone (with a note) while none was fetched yet. Links to this API are added later."""
    if document is None:
        collection = _from_config_only(source)
    else:
        collection = _from_source(source, document)
    collection[SOURCE_FIELD] = {"kind": source.kind, "url": source_document_url(source),
                                "fetched_at": fetched_at if document is not None else None}
    if source.aliases:
        collection[ALIASES_FIELD] = list(source.aliases)
        names = ", ".join(f"`{alias}`" for alias in source.aliases)
        collection["description"] = f"{collection['description']}\n\nAlso available as {names}."
    return deep_merge(collection, source.metadata)


def _from_source(source: CollectionSource, document: Mapping[str, Any]) -> dict[str, Any]:
    bands = collection_bands(source, document)
    extent = _extent(document.get("extent"))
    summaries = {key: value for key, value in copy.deepcopy(document.get("summaries") or {}).items()
                 if _valid_summary(value)}
    if bands:
        summaries["eo:bands"] = [{k: v for k, v in band.items() if k != "stratus:asset"} for band in bands]
    extensions = [e for e in document.get("stac_extensions") or [] if isinstance(e, str)]
    optical = bool(bands) and ("eo:bands" in (document.get("summaries") or {}) or any("/eo/" in e for e in extensions))
    if optical:
        summaries.setdefault("eo:cloud_cover", dict(CLOUD_COVER_RANGE))
    for extension in (DATACUBE_EXTENSION, *([EO_EXTENSION] if optical else [])):
        if extension not in extensions and not (extension == EO_EXTENSION and any("/eo/" in e for e in extensions)):
            extensions.append(extension)
    collection = {
        "stac_version": STAC_VERSION,
        "stac_extensions": extensions,
        "type": "Collection",
        "id": source.id,
        "title": str(document.get("title") or source.id),
        "description": str(document.get("description") or f"{source.source_collection} from {source.url}"),
        "license": str(document.get("license") or "proprietary"),
        "extent": extent,
        "cube:dimensions": _dimensions(extent, bands),
        "summaries": summaries,
        "links": [dict(link) for link in document.get("links") or []
                  if isinstance(link, Mapping) and link.get("href") and link.get("rel") not in SOURCE_TREE_RELS]
                 + _source_links(source),
    }
    for field_name in ("keywords", "providers", "sci:doi", "sci:citation", "deprecated", "version"):
        if document.get(field_name) is not None:
            collection[field_name] = copy.deepcopy(document[field_name])
    return collection


def _from_config_only(source: CollectionSource) -> dict[str, Any]:
    extent = {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}}
    bands = [{"name": name, "stratus:asset": key} for name, key in source.bands.items()]
    note = (f"The metadata of `{source.source_collection}` has not been fetched from {source.url} yet (the "
            "source was not reached since this collection was configured); the extents below are placeholders "
            "and the bands are only those the configuration names.")
    return {
        "stac_version": STAC_VERSION,
        "stac_extensions": [DATACUBE_EXTENSION],
        "type": "Collection",
        "id": source.id,
        "title": source.id,
        "description": note,
        "license": "proprietary",
        "extent": extent,
        "cube:dimensions": _dimensions(extent, bands),
        "summaries": {"eo:bands": [{"name": b["name"]} for b in bands]} if bands else {},
        "links": _source_links(source),
    }


def _source_links(source: CollectionSource) -> list[dict[str, Any]]:
    links = [{"rel": "via", "href": source_document_url(source), "type": "application/json",
              "title": f"The source collection ({source.kind})"}]
    if source.kind == STAC_API:
        links.append({"rel": "related", "href": source.url, "type": "application/json",
                      "title": "The STAC API the collection's items are searched in"})
    return links


def _extent(extent: Any) -> dict[str, Any]:
    extent = extent if isinstance(extent, Mapping) else {}
    spatial = extent.get("spatial") if isinstance(extent.get("spatial"), Mapping) else {}
    temporal = extent.get("temporal") if isinstance(extent.get("temporal"), Mapping) else {}
    bbox = [list(b) for b in spatial.get("bbox") or [] if isinstance(b, list) and len(b) in (4, 6)]
    interval = [list(i) for i in temporal.get("interval") or [] if isinstance(i, list) and len(i) == 2]
    return {"spatial": {"bbox": bbox or [[-180, -90, 180, 90]]},
            "temporal": {"interval": interval or [[None, None]]}}


def _dimensions(extent: Mapping[str, Any], bands: list[Mapping[str, Any]]) -> dict[str, Any]:
    """x/y over the WGS84 bounding box (EPSG:4326 is the one system the extent is known in; items keep
    their native grid, e.g. a UTM zone each, so no step is claimed); t over the temporal interval; bands
    by openEO name."""
    bbox = extent["spatial"]["bbox"][0]
    west, south, east, north = (bbox[0], bbox[1], bbox[3], bbox[4]) if len(bbox) == 6 else bbox
    dimensions: dict[str, Any] = {
        "x": {"type": "spatial", "axis": "x", "extent": [west, east], "reference_system": WGS84},
        "y": {"type": "spatial", "axis": "y", "extent": [south, north], "reference_system": WGS84},
        "t": {"type": "temporal", "extent": list(extent["temporal"]["interval"][0]), "step": None},
    }
    if bands:
        dimensions["bands"] = {"type": "bands", "values": [band["name"] for band in bands]}
    return dimensions


def _valid_summary(value: Any) -> bool:
    """openEO summaries are non-empty value lists, ranges or JSON schemas."""
    if isinstance(value, list):
        return bool(value)
    return isinstance(value, Mapping) and bool(value)


def deep_merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`overrides` over `base`: objects merged key by key, everything else replaced."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(dict(merged[key]), value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
