"""A fanned-out run's load plans, frozen once by PlanRun (`run_loads`) beside its `plan.json`, so no tile
step repeats the whole run's STAC search and load planning (docs/fanout.md): the `LoadPlan` of every load
node as JSON, read back by each tile step. Exact round trip: CRS as its EPSG code or WKT, the transform's six
numbers, the items' own documents, geometries as GeoJSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import mapping, shape

from stratus_processing.grid import Grid
from stratus_processing.io.load import LoadPlan
from stratus_processing.io.stac import BandInfo, StacItem

FORMAT = 1


def loads_to_json(loads: Mapping[str, LoadPlan]) -> dict[str, Any]:
    return {"format": FORMAT, "loads": {node_id: _plan_to_json(plan) for node_id, plan in loads.items()}}


def loads_from_json(document: Any) -> dict[str, LoadPlan] | None:
    """The plans; None when the document is missing or of another format (the step then plans them itself)."""
    if not isinstance(document, Mapping) or document.get("format") != FORMAT:
        return None
    return {node_id: _plan_from_json(plan) for node_id, plan in document["loads"].items()}


def _plan_to_json(plan: LoadPlan) -> dict[str, Any]:
    items: dict[str, dict[str, Any]] = {}
    days = []
    for day in plan.days:
        days.append([item.id for item in day])
        for item in day:
            items[item.id] = _item_to_json(item)
    return {"grid": _grid_to_json(plan.grid), "bands": [asdict(band) for band in plan.bands], "days": days,
            "items": items, "apply_scale": plan.apply_scale,
            "footprints": {item_id: list(bounds) for item_id, bounds in plan.footprints.items()},
            "geometries": None if plan.geometries is None else [mapping(g) for g in plan.geometries],
            "dtype": plan.dtype.name}


def _plan_from_json(document: Mapping[str, Any]) -> LoadPlan:
    items = {item_id: _item_from_json(item) for item_id, item in document["items"].items()}
    geometries = document.get("geometries")
    return LoadPlan(grid=_grid_from_json(document["grid"]),
                    bands=tuple(BandInfo(**band) for band in document["bands"]),
                    days=tuple(tuple(items[item_id] for item_id in day) for day in document["days"]),
                    apply_scale=bool(document["apply_scale"]),
                    footprints={item_id: tuple(bounds) for item_id, bounds in document["footprints"].items()},
                    geometries=None if geometries is None else tuple(shape(g) for g in geometries),
                    dtype=np.dtype(document.get("dtype", "float64")))


def _grid_to_json(grid: Grid) -> dict[str, Any]:
    code = grid.crs.to_epsg(confidence_threshold=100)  # an EPSG CRS stays one (the outputs' CRS says so)
    return {"crs": f"EPSG:{code}" if code else grid.crs.to_wkt(), "transform": list(grid.transform)[:6],
            "width": grid.width, "height": grid.height}


def _grid_from_json(document: Mapping[str, Any]) -> Grid:
    return Grid(CRS.from_user_input(document["crs"]), Affine(*document["transform"]), document["width"],
                document["height"])


def _item_to_json(item: StacItem) -> dict[str, Any]:
    return {"id": item.id, "datetime": item.datetime.isoformat(), "bbox": list(item.bbox),
            "properties": item.properties, "assets": item.assets,
            "end_datetime": item.end_datetime.isoformat() if item.end_datetime else None}


def _item_from_json(document: Mapping[str, Any]) -> StacItem:
    end = document.get("end_datetime")
    return StacItem(document["id"], datetime.fromisoformat(document["datetime"]), tuple(document["bbox"]),
                    document["properties"], document["assets"], datetime.fromisoformat(end) if end else None)
