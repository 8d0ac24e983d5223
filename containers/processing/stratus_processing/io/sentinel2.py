"""Sentinel-2 L2A as users of the big back-ends expect it, for every collection whose items say they are
Sentinel-2 (`s2:processing_baseline`): one product per tile and overpass, and reflectances in the right
scale whatever the processing baseline.

- De-duplication: ESA reprocesses old acquisitions (baseline 05.xx for 2017-2021 data) and some archives
  keep both products, as items of the same tile and sensing time. Of items of one tile (`grid:code`,
  `s2:mgrs_tile`, the `mgrs:` fields or the product name) and one datatake (`s2:datatake_id` without its
  baseline suffix, else the product's sensing time), only those of the newest baseline are kept; items
  of one baseline (a tile split between two datastrips) all stay, to be mosaicked.
- Radiometric offset: from baseline 04.00 on, L2A digital numbers carry +1000 (`BOA_ADD_OFFSET` -1000):
  reflectance = DN × 0.0001 - 0.1. The scale and offset come from each item's own `raster:bands` (Earth
  Search v1 writes offset -0.1 there for 04.00+ items and 0 before; its collection's `item_assets` say 0
  for all, so never the collection's). A reflectance asset (one with an `eo:bands` entry) whose item has
  no scale/offset gets them from the item's baseline. SCL, AOT and WVP are no reflectances: SCL keeps its
  class values, AOT/WVP their own scale.
- No-data: `raster:bands` `nodata` (0 for Earth Search's L2A), read as NaN.

What users are told (`/collections`): `stratus.sentinel2.SENTINEL2_DESCRIPTION`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from stratus.sentinel2 import BOA_OFFSET, OFFSET_BASELINE, REFLECTANCE_SCALE

from stratus_processing.io.stac import StacItem

_BASELINE_PROPERTIES = ("s2:processing_baseline", "sentinel:processing_baseline")
_PRODUCT_BASELINE = re.compile(r"_N(\d{2})(\d{2})_")
_PRODUCT_TILE = re.compile(r"_T(\d{2}[A-Z]{3})_")
_PRODUCT_SENSING = re.compile(r"MSIL2A_(\d{8}T\d{6})_")


def is_sentinel2(item: StacItem) -> bool:
    return processing_baseline(item) is not None


def processing_baseline(item: StacItem) -> tuple[int, int] | None:
    """(major, minor) of the item's processing baseline, e.g. (5, 9) for "05.09"."""
    properties = item.properties
    for name in _BASELINE_PROPERTIES:
        value = properties.get(name)
        if isinstance(value, str) and (match := re.fullmatch(r"\s*(\d+)\.(\d+)\s*", value)):
            return int(match[1]), int(match[2])
    product = str(properties.get("s2:product_uri") or "")
    if match := _PRODUCT_BASELINE.search(product):
        return int(match[1]), int(match[2])
    return None


def prepare_items(items: Sequence[StacItem]) -> tuple[list[StacItem], list[StacItem]]:
    """(the items to load, the items superseded by a newer baseline); items that aren't Sentinel-2
    pass unchanged."""
    superseded = {item.id for item in _superseded(items)}
    kept = [with_radiometry(item) for item in items if item.id not in superseded]
    return kept, [item for item in items if item.id in superseded]


def _superseded(items: Sequence[StacItem]) -> list[StacItem]:
    groups: dict[tuple[str, str, str], list[tuple[tuple[int, int], StacItem]]] = {}
    for item in items:
        baseline = processing_baseline(item)
        key = _product_key(item)
        if baseline is not None and key is not None:
            groups.setdefault(key, []).append((baseline, item))
    dropped = []
    for members in groups.values():
        newest = max(baseline for baseline, _ in members)
        dropped += [item for baseline, item in members if baseline < newest]
    return dropped


def _product_key(item: StacItem) -> tuple[str, str, str] | None:
    """(platform, tile, datatake) an item is a product of, None when the metadata doesn't tell."""
    properties = item.properties
    product = str(properties.get("s2:product_uri") or "")
    tile = _tile(properties, product)
    if tile is None:
        return None
    datatake = properties.get("s2:datatake_id")
    if isinstance(datatake, str) and datatake:
        sensing = re.sub(r"_N\d{2}\.\d{2}$", "", datatake)
    elif match := _PRODUCT_SENSING.search(product):
        sensing = match[1]
    else:
        sensing = item.datetime.replace(microsecond=0).isoformat()
    platform = str(properties.get("platform") or item.id[:3]).lower()
    return platform, tile, sensing


def _tile(properties: dict[str, Any], product: str) -> str | None:
    code = properties.get("s2:mgrs_tile") or properties.get("grid:code")
    if isinstance(code, str) and code:
        return code.upper().removeprefix("MGRS-")
    zone, band, square = (properties.get(f"mgrs:{name}") for name in ("utm_zone", "latitude_band", "grid_square"))
    if zone is not None and band and square:
        return f"{int(zone):02d}{band}{square}".upper()
    if match := _PRODUCT_TILE.search(product):
        return match[1]
    return None


def with_radiometry(item: StacItem) -> StacItem:
    """The item with scale/offset on every reflectance asset that has none, from its baseline."""
    baseline = processing_baseline(item)
    if baseline is None:
        return item
    offset = BOA_OFFSET if baseline >= OFFSET_BASELINE else 0.0
    assets = {}
    changed = False
    for key, asset in item.assets.items():
        band = item.raster_band(key)
        if _is_reflectance(asset) and "scale" not in band and "offset" not in band:
            entries = list(asset.get("raster:bands") or [{}])
            entries[0] = {**entries[0], "scale": REFLECTANCE_SCALE, "offset": offset}
            asset = {**asset, "raster:bands": entries}
            changed = True
        assets[key] = asset
    return replace(item, assets=assets) if changed else item


def _is_reflectance(asset: dict[str, Any]) -> bool:
    """A spectral band (`eo:bands`/`bands` with a name); SCL, AOT and WVP have none."""
    entries = asset.get("eo:bands") or asset.get("bands") or []
    return len(entries) == 1 and isinstance(entries[0], dict) and bool(entries[0].get("name")) and (
        "visual" not in (asset.get("roles") or []))
