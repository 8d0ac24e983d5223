"""Generated benchmark input as a static STAC catalogue, laid out as in the data bucket
(`stratus.catalog_layout`), so the engine reads it through `StacCatalog(DirectoryJsonStore(root))`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def wgs84_bbox(epsg: int, bounds: tuple[float, float, float, float]) -> list[float]:
    """`bounds` (west, south, east, north in EPSG:`epsg`) as a STAC bbox."""
    from rasterio.warp import transform_bounds  # noqa: PLC0415

    return list(transform_bounds(f"EPSG:{epsg}", "EPSG:4326", *bounds))


def write_catalog(root: Path, collection_id: str, items: list[dict[str, Any]], *, bbox: list[float],
                  interval: tuple[str, str], eo_bands: list[dict[str, str]]) -> None:
    """Write `items` and their collection (spatial extent `bbox`, temporal `interval`, `eo_bands` summary)."""
    from stratus import catalog_layout  # noqa: PLC0415

    for item in items:
        path = root / catalog_layout.item_key(collection_id, item["id"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(item))
    collection = {
        "type": "Collection", "stac_version": "1.0.0", "id": collection_id, "description": "benchmark input",
        "license": "CC0-1.0",
        "extent": {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [list(interval)]}},
        "summaries": {"eo:bands": eo_bands}, "links": [],
    }
    (root / catalog_layout.collection_key(collection_id)).write_text(json.dumps(collection))
