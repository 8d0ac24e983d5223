"""The extent a load node really needs, applied before its search, its size guard and any read.

The analysis itself (which filters downstream of a load keep which area, time and bands) is the
runtime layer's `stratus.domain.load_needs`, shared with the API's dry run; here it is applied with
the raster stack: areas in other CRSs are reprojected (as enclosing boxes) and intersected with
the load's own `spatial_extent`, time spans with its `temporal_extent`, and the bands of the plan
are cut to those the graph keeps.

Narrowing never changes a result: the filters downstream still run on the narrowed cube and keep
exactly the pixels, dates and bands they would have kept of the whole one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rasterio.crs import CRS
from rasterio.errors import CRSError
from shapely.geometry import box, mapping
from stratus.domain.load_needs import (
    LOAD_PROCESSES,
    LoadNeeds,
    analyse_loads,
    describe_sources,
    intersection_of_boxes,
    union_of_boxes,
)
from stratus.errors import ProcessParameterInvalidException

from stratus_processing import cube as cubes
from stratus_processing.geometry import POLYGONAL_TYPES, GeometryError, parse_geojson, reproject_bounds
from stratus_processing.grid import WGS84, parse_crs
from stratus_processing.registry import ProcessArgs

if TYPE_CHECKING:
    from stratus_processing.env import EvalEnv
    from stratus_processing.graph import ProcessGraph
    from stratus_processing.io.load import LoadPlan

Bounds = tuple[float, float, float, float]


def load_needs_of(graph: ProcessGraph, arguments: Mapping[str, Any]) -> dict[str, LoadNeeds]:
    """The needs of the graph's load nodes, `arguments` resolving its parameters."""
    flat = {node.node_id: {"process_id": node.process_id, "arguments": node.arguments, "namespace": node.namespace}
            for node in graph.nodes.values()}
    return analyse_loads(flat, arguments)


def with_load_needs(env: EvalEnv, graph: ProcessGraph, arguments: Mapping[str, Any]) -> EvalEnv:
    """`env` knowing the needs of the graph's load nodes (unchanged for a graph without loads)."""
    if not any(node.process_id in LOAD_PROCESSES for node in graph.nodes.values()):
        return env
    return replace(env, load_needs={**env.load_needs, **load_needs_of(graph, arguments)})


def needs_for(args: ProcessArgs, env: EvalEnv) -> LoadNeeds | None:
    """The needs of this load node: while a tiled run plans its loads, those of the whole graph."""
    tile = env.tile
    if tile is not None and tile.planning and args.node_id in tile.load_needs:
        return tile.load_needs[args.node_id]
    return env.load_needs.get(args.node_id or "")


def narrowed_args(args: ProcessArgs, needs: LoadNeeds | None) -> ProcessArgs:
    """The load's arguments with `spatial_extent` and `temporal_extent` narrowed to the needs.
    Arguments that aren't valid are left as they are, for the load to report."""
    if needs is None or not needs.narrowed:
        return args
    arguments = dict(args)
    if needs.regions is not None:
        spatial = _narrowed_spatial(args.get("spatial_extent"), needs)
        if spatial is not None:
            arguments["spatial_extent"] = spatial
    interval = needs.interval()
    if interval is not None:
        temporal = _narrowed_temporal(args.get("temporal_extent"), interval)
        if temporal is not None:
            arguments["temporal_extent"] = temporal
    return ProcessArgs(arguments, process_id=args.process_id, node_id=args.node_id)


def narrowed_bands(plan: LoadPlan, needs: LoadNeeds | None) -> LoadPlan:
    """The plan reading only the bands the graph keeps (by name or common name). The grid, items
    and dates stay those of all requested bands, so the kept bands are what they would have been."""
    kept = needs.bands() if needs is not None else None
    if not kept:
        return plan
    names = {name for band in plan.bands for name in (band.name, band.common_name) if name}
    if not set(kept) <= names:
        return plan  # a name the load doesn't have: the filter will say so
    bands = tuple(band for band in plan.bands if band.name in kept or band.common_name in kept)
    return replace(plan, bands=bands) if bands and len(bands) < len(plan.bands) else plan


def too_large(args: ProcessArgs, needs: LoadNeeds | None, plan: LoadPlan, width: int, height: int, size: int,
              limit: int) -> ProcessParameterInvalidException:
    """The size guard's error, naming where the area, time and bands came from, and blaming the
    parameter that set the area (the load's own `spatial_extent` or a filter's)."""
    sources = needs.sources() if needs is not None else {}
    spatial_given = args.get("spatial_extent") is not None
    if "area" in sources:
        area = f"the area of {describe_sources(sources['area'])}"
    elif spatial_given:
        area = "the spatial_extent"
    else:
        area = "the whole footprint of the items (no spatial extent given, none kept by later filters)"
    if "time" in sources:
        time = f"the time of {describe_sources(sources['time'])}"
    elif args.get("temporal_extent") is not None:
        time = "the temporal_extent"
    else:
        time = "all dates (no temporal extent given)"
    bands = f"the bands of {describe_sources(sources['bands'])}" if "bands" in sources else "the bands loaded"
    reason = (f"the data {args.process_id} would load for {area}, {time} and {bands} would take "
              f"{size / 1024**3:.1f} GiB ({len(plan.days)} dates × {len(plan.bands)} bands × {width} × {height} px), "
              f"more than the {limit / 1024**3:.0f} GiB a job may load at once; limit the area, the time span or "
              f"the bands")
    if "area" in sources:
        first = sources["area"][0]
        return ProcessParameterInvalidException(parameter=first.parameter, process=first.process_id,
                                                reason=f"{reason} (node '{first.node_id}')")
    return args.invalid("spatial_extent" if spatial_given or args.process_id == "load_collection"
                        else "url", reason)


# --- spatial ----------------------------------------------------------------------------------

def _narrowed_spatial(own: Any, needs: LoadNeeds) -> Any:
    """The narrowed `spatial_extent` value, or None to keep the load's own."""
    try:
        if own is None:
            crss = {r.crs for r in needs.regions or ()}
            target = _crs(crss.pop()) if len(crss) == 1 else WGS84
            west, south, east, north = _needed_bounds(needs, target)
            return {"west": west, "south": south, "east": east, "north": north, "crs": _crs_argument(target)}
        if not isinstance(own, Mapping):
            return None
        if "west" in own:
            own_crs = parse_crs(own.get("crs") if own.get("crs") is not None else 4326)
            own_bounds = tuple(float(own[k]) for k in ("west", "south", "east", "north"))
            inside = intersection_of_boxes(own_bounds, _needed_bounds(needs, own_crs))  # type: ignore[arg-type]
            if inside is None:
                return None
            west, south, east, north = inside
            return {**own, "west": west, "south": south, "east": east, "north": north}
        return _clipped_geojson(own, needs)
    except (CRSError, GeometryError, KeyError, TypeError, ValueError):
        return None


def _clipped_geojson(own: Mapping[str, Any], needs: LoadNeeds) -> dict[str, Any] | None:
    """The load's polygons cut to the needed box: the same pixels inside it, none outside."""
    features = parse_geojson(own)
    frame = box(*_needed_bounds(needs, features.crs))
    clipped = []
    for geometry in features.non_empty():
        part = geometry.intersection(frame)
        polygons = [g for g in getattr(part, "geoms", [part]) if g.geom_type in POLYGONAL_TYPES and not g.is_empty]
        clipped += [{"type": "Feature", "properties": {}, "geometry": mapping(p)} for p in polygons]
    if not clipped:
        return None
    return {"type": "FeatureCollection", "features": clipped,
            "crs": {"type": "name", "properties": {"name": features.crs.to_string()}}}


def _needed_bounds(needs: LoadNeeds, crs: CRS) -> Bounds:
    """The union of the needed regions as one box in `crs` (enclosing, where reprojected)."""
    return union_of_boxes(reproject_bounds(region.bounds, _crs(region.crs), crs) for region in needs.regions or ())


def _crs(value: int | str) -> CRS:
    return parse_crs(value)


def _crs_argument(crs: CRS) -> int | str:
    epsg = crs.to_epsg()
    return epsg if epsg is not None else crs.to_wkt()


# --- temporal ---------------------------------------------------------------------------------

def _narrowed_temporal(own: Any, needed: tuple[datetime | None, datetime | None]) -> list[str | None] | None:
    """The narrowed `temporal_extent` value, or None to keep the load's own."""
    start, end = needed
    if own is not None:
        if not isinstance(own, list) or len(own) != 2 or own == [None, None]:
            return None
        try:
            own_start, own_end = (cubes.parse_utc(v) if v is not None else None for v in own)
        except (TypeError, ValueError, AttributeError):
            return None
        start = own_start if start is None else (start if own_start is None else max(start, own_start))
        end = own_end if end is None else (end if own_end is None else min(end, own_end))
        if start is not None and end is not None and end <= start:
            return None  # no overlap: the load's own extent, and the filter finds nothing
    return [start.isoformat() if start else None, end.isoformat() if end else None]
