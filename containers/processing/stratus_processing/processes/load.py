"""Loading data (openEO category "import"): `load_collection` from the back-end's catalog and
`load_stac` from any STAC Item, Collection, Catalog or STAC API collection.

Both plan first (search, `properties` filter, bands, time steps, target grid: `io.load.plan_load`)
and then read the pixels. In tiled execution (`stratus_processing.tiling`) the plan is made once
for the whole grid, while the runner plans the loads, and each tile then reads its own window.

Differences between the two, both as the openEO specs say:
- load_collection applies the STAC scale/offset (reflectance for Sentinel-2 L2A), load_stac keeps
  the stored values ("scale and offset are not applied automatically"); no-data is NaN for both;
- load_stac's `url` may be http(s):// or s3:// (of the data bucket); its assets must be, too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from rasterio.crs import CRS
from rasterio.errors import CRSError
from shapely.geometry.base import BaseGeometry
from stratus.domain import property_filters
from stratus.errors import InternalException

from stratus_processing.deferred import xr
from stratus_processing import cube as cubes
from stratus_processing import load_extent
from stratus_processing.env import EvalEnv
from stratus_processing.errors import NoDataAvailableException, TemporalExtentEmptyException
from stratus_processing.geometry import POLYGONAL_TYPES, GeometryError, parse_geojson
from stratus_processing.grid import WGS84, parse_crs, transform_bounds
from stratus_processing.io import sentinel2
from stratus_processing.io.load import LoadPlan, load_cube, plan_load
from stratus_processing.io.stac import (
    BandInfo,
    DocumentReader,
    SearchRequest,
    StacItem,
    StacReadError,
    TooManyItemsError,
    open_stac_source,
    resolve_bands,
)
from stratus_processing.registry import Callback, ProcessArgs, process

# Largest cube a load materialises at once, in bytes: a quarter of the 8 GiB Fargate task
# (resources.PROCESSING_MEMORY_MB) leaves room for the intermediate cubes of band math and reducers.
# Tiled execution checks each tile against it, so a tileable graph has no limit on its area.
MAX_CUBE_BYTES = 2 * 1024**3

_GEOJSON_TYPES = {"Polygon", "MultiPolygon", "Feature", "FeatureCollection", "GeometryCollection", "Point",
                  "MultiPoint", "LineString", "MultiLineString"}


@process("load_collection")
def load_collection(args: ProcessArgs, env: EvalEnv) -> xr.DataArray | None:
    return _load(args, env, _plan_collection)


@process("load_stac")
def load_stac(args: ProcessArgs, env: EvalEnv) -> xr.DataArray | None:
    return _load(args, env, _plan_stac)


def _load(args: ProcessArgs, env: EvalEnv, planner: Callable[[ProcessArgs, EvalEnv], LoadPlan]) -> xr.DataArray | None:
    """Plan and read the whole grid; or, in tiled execution, plan once (while the runner plans the
    loads) and read each tile's window with that plan. The plan covers only what the graph keeps of
    the load (`load_extent`: later filters narrow its area, time and bands)."""
    tile = env.tile
    plan = tile.loads.get(args.node_id) if tile is not None and not tile.planning else None
    needs = load_extent.needs_for(args, env)
    if plan is None:
        plan = planner(load_extent.narrowed_args(args, needs), env)
    if tile is not None and tile.planning:
        tile.loads[args.node_id or ""] = plan
        return None  # the runner only plans here; the tiles read the pixels
    grid = tile.grid if tile is not None else plan.grid
    size = plan.size_bytes(grid)
    if size > MAX_CUBE_BYTES:
        raise load_extent.too_large(args, needs, plan, grid.width, grid.height, size, MAX_CUBE_BYTES)
    return load_cube(plan, env.rasters, grid, side_by_side=tile.workers if tile is not None else 1)


# --- load_collection ----------------------------------------------------------------------------

def _plan_collection(args: ProcessArgs, env: EvalEnv) -> LoadPlan:
    """The collection by id or alias (`io.sources`): own, remote STAC API or static catalog; Sentinel-2
    items de-duplicated by processing baseline, with their own radiometry (`io.sentinel2`)."""
    catalog = env.require_catalog()
    collection = catalog.open(args.get_required("id", expected_type=str))
    args.get_required("spatial_extent")  # required (may be null) for load_collection, optional for load_stac
    args.get_required("temporal_extent")
    extent = _spatial_extent(args)
    start, end = _temporal_extent(args)
    described = f"collection '{collection.id}'"
    bands = _bands(args, collection.bands, described) if collection.bands is not None else None
    request = _search_request(args, env, extent, start, end)
    try:
        items = collection.search(request)
    except TooManyItemsError as exc:
        raise args.invalid("spatial_extent", f"{exc}: limit the spatial or temporal extent") from None
    except StacReadError as exc:
        raise InternalException(message=f"The catalog of collection '{collection.id}' is not readable: {exc}") from exc
    items, superseded = sentinel2.prepare_items(items)
    if bands is None:
        if not items:
            raise NoDataAvailableException()
        bands = _bands(args, collection.bands_of(items), described)
    if collection.check_href is not None:
        # The operator's source, not the user's request, points there: not the user's error.
        _check_assets(items, bands, collection.check_href, lambda reason: InternalException(
            message=f"The data of collection '{collection.id}' is not readable: {reason}"))
    plan = _plan(args, env, items, bands, extent, apply_scale=True)
    found = f"{plan.item_count} items of '{collection.id}'"
    if superseded:
        found += f" ({len(superseded)} superseded by a newer Sentinel-2 processing baseline left out)"
    _log_plan(args, env, plan, found, start, end)
    return plan


def _check_assets(items: list[StacItem], bands: list[BandInfo], check_href: Callable[[str], None],
                  error: Callable[[str], Exception]) -> None:
    """Every asset a load would open may be read (the outbound guard, the readable buckets): checked
    before planning, which may open a file for its grid."""
    checked: set[tuple[str, str]] = set()  # the check depends on the scheme and host (bucket) only
    for item in items:
        for band in bands:
            key = item.asset_for(band)
            if key is None:
                continue
            href = item.assets[key]["href"]
            parsed = urlsplit(href)
            if (parsed.scheme, parsed.netloc) in checked and parsed.netloc:
                continue
            try:
                check_href(href)
            except ValueError as exc:
                raise error(f"asset '{key}' of item '{item.id}' can't be read: {exc}") from None
            checked.add((parsed.scheme, parsed.netloc))


# --- load_stac ----------------------------------------------------------------------------------

def _plan_stac(args: ProcessArgs, env: EvalEnv) -> LoadPlan:
    url = args.get_required("url", expected_type=str)
    documents = env.catalog.documents if env.catalog is not None else DocumentReader()
    if env.rasters is None:
        raise InternalException(message="No raster reader is configured for this evaluation.")
    extent = _spatial_extent(args)
    start, end = _temporal_extent(args)
    request = _search_request(args, env, extent, start, end)
    try:
        source = open_stac_source(url, documents)
        items = source.search(request)
    except StacReadError as exc:
        raise args.invalid("url", str(exc)) from None
    except TooManyItemsError as exc:
        raise args.invalid("spatial_extent", f"{exc}: limit the spatial or temporal extent") from None
    if not items:
        raise NoDataAvailableException()
    bands = _bands(args, source.bands(items), f"the STAC data at {url}")
    _check_assets(items, bands, documents.check_href, lambda reason: args.invalid("url", reason))
    plan = _plan(args, env, items, bands, extent, apply_scale=False)
    _log_plan(args, env, plan, f"{plan.item_count} items from {url}", start, end)
    return plan


# --- shared -------------------------------------------------------------------------------------

Extent = tuple[CRS, tuple[float, float, float, float], list[BaseGeometry] | None]


def _plan(args: ProcessArgs, env: EvalEnv, items: list[StacItem], bands: list[BandInfo], extent: Extent | None,
          *, apply_scale: bool) -> LoadPlan:
    items = [item for item in items if any(item.asset_for(b) is not None for b in bands)]
    if not items:
        raise NoDataAvailableException()
    plan = plan_load(items, bands, extent[:2] if extent else None, env.rasters, apply_scale=apply_scale,
                     geometries=extent[2] if extent else None, geometries_crs=extent[0] if extent else None,
                     single_precision_outputs=env.single_precision_outputs)
    if plan.grid.width == 0 or plan.grid.height == 0:
        raise NoDataAvailableException()
    return load_extent.narrowed_bands(plan, load_extent.needs_for(args, env))


def _log_plan(args: ProcessArgs, env: EvalEnv, plan: LoadPlan, found: str, start: datetime | None,
              end: datetime | None) -> None:
    band_list = ", ".join(b.name for b in plan.bands)
    grid = plan.grid
    env.reporter.log(
        f"{args.process_id}: {found} × bands {band_list} for the extent ({_describe_interval(start, end)}); "
        f"{len(plan.days)} dates, reading onto a {grid.width} × {grid.height} px grid at "
        f"{grid.resolution[0]:g} {_unit(grid.crs)} in {_crs_name(grid.crs)}", path=args.path)


def _search_request(args: ProcessArgs, env: EvalEnv, extent: Extent | None, start: datetime | None,
                    end: datetime | None) -> SearchRequest:
    """The search for the load: area, time and the `properties` conditions, for the STAC API as CQL2
    (Filter extension) or `query`, and always applied to the items found. A configured collection's
    default filter is the source's (`StacApi`)."""
    bbox = transform_bounds(extent[0], WGS84, *extent[1], densify_pts=21) if extent else None
    filters = _property_filters(args)
    accept = None
    if filters:
        def accept(item: StacItem) -> bool:
            return all(_holds(callback, env, item.properties.get(name)) for name, callback in filters.items())
    conditions = _condition_graphs(filters)
    return SearchRequest(bbox=bbox, start=start, end=end, query=property_filters.combined_query(conditions),
                         accept=accept, filter=property_filters.combined_cql2(conditions))


def _spatial_extent(args: ProcessArgs) -> Extent | None:
    extent = args.get_optional("spatial_extent")
    if extent is None:
        return None
    if not isinstance(extent, Mapping):
        raise args.invalid("spatial_extent", "expected a bounding box, GeoJSON polygons or null")
    if extent.get("type") in _GEOJSON_TYPES:
        return _geojson_extent(args, extent)
    try:
        west, south, east, north = (float(extent[k]) for k in ("west", "south", "east", "north"))
    except (KeyError, TypeError, ValueError):
        raise args.invalid("spatial_extent", "a bounding box needs numeric west, south, east and north") from None
    if west >= east or south >= north:
        raise args.invalid("spatial_extent", "west must be less than east and south less than north")
    try:
        crs = parse_crs(extent.get("crs") if extent.get("crs") is not None else 4326)
    except (CRSError, TypeError, ValueError) as exc:
        raise args.invalid("spatial_extent", f"unknown crs {extent.get('crs')!r}: {exc}") from None
    return crs, (west, south, east, north), None


def _geojson_extent(args: ProcessArgs, extent: Mapping[str, Any]) -> Extent:
    """openEO: pixels whose centre lies in any of the polygons (the rest becomes no-data)."""
    try:
        features = parse_geojson(extent)
    except GeometryError as exc:
        raise args.invalid("spatial_extent", str(exc)) from None
    geometries = features.non_empty()
    if not geometries or any(g.geom_type not in POLYGONAL_TYPES for g in geometries):
        raise args.invalid("spatial_extent", "GeoJSON extents must be Polygons or MultiPolygons "
                                             "(or Features or a FeatureCollection of them)")
    return features.crs, features.bounds(), geometries


def _temporal_extent(args: ProcessArgs) -> tuple[datetime | None, datetime | None]:
    interval = args.get_optional("temporal_extent")
    if interval is None:
        return None, None
    if not isinstance(interval, list) or len(interval) != 2:
        raise args.invalid("temporal_extent", "expected an array of two instants [start, end], or null")
    if interval[0] is None and interval[1] is None:
        raise args.invalid("temporal_extent", "at most one of start and end may be null")
    try:
        start, end = (cubes.parse_utc(v) if v is not None else None for v in interval)
    except (TypeError, ValueError, AttributeError):
        raise args.invalid("temporal_extent", "instants must be RFC 3339 dates or date-times") from None
    if start is not None and end is not None and end <= start:
        raise TemporalExtentEmptyException()
    return start, end


def _bands(args: ProcessArgs, available: list[BandInfo], source: str) -> list[BandInfo]:
    requested = args.get_optional("bands", expected_type=list)
    if requested is None:
        if not available:
            raise args.invalid("bands", f"{source} describes no bands")
        return available
    if not requested or not all(isinstance(b, str) for b in requested):
        raise args.invalid("bands", "expected a non-empty array of band names")
    try:
        return resolve_bands(available, requested)
    except KeyError as exc:
        known = ", ".join(b.name for b in available)
        raise args.invalid("bands", f"{source} has no band '{exc.args[0]}' (bands: {known})") from None


def _property_filters(args: ProcessArgs) -> dict[str, Callback]:
    """openEO `properties`: metadata property name -> condition (a child process graph on `value`)."""
    properties = args.get_optional("properties", expected_type=dict)
    if not properties:
        return {}
    filters = {}
    for name, condition in properties.items():
        if not isinstance(condition, Callback):
            raise args.invalid("properties", f"the condition for '{name}' must be a process graph with the "
                                             f"parameter 'value'")
        filters[str(name)] = condition
    return filters


def _holds(condition: Callback, env: EvalEnv, value: Any) -> bool:
    """The condition on one item's property value; no-data (null) means the item doesn't match."""
    result = condition(env, value=value)
    return result is True or (not isinstance(result, (bool, type(None))) and bool(result))


def _condition_graphs(filters: Mapping[str, Callback]) -> dict[str, dict[str, Any]]:
    """The conditions as openEO process objects (`{"process_graph": ...}`), for translation."""
    conditions = {}
    for name, condition in filters.items():
        graph = getattr(condition, "graph", None)
        if graph is not None:
            conditions[name] = {"process_graph": {
                node.node_id: {"process_id": node.process_id, "arguments": node.arguments,
                               "namespace": node.namespace, "result": node.result} for node in graph.nodes.values()}}
    return conditions


def _api_query(filters: Mapping[str, Callback]) -> dict[str, Any] | None:
    """The STAC API Query-extension form of the conditions that translate (see
    `stratus.domain.property_filters`); the rest filter locally only."""
    return property_filters.combined_query(_condition_graphs(filters))


def _describe_interval(start: datetime | None, end: datetime | None) -> str:
    def show(moment: datetime | None) -> str:
        return cubes.isoformat_utc(moment) if moment else "open"
    return f"{show(start)} to {show(end)}, end excluded"


def _crs_name(crs: CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()


def _unit(crs: CRS) -> str:
    return "°" if crs.is_geographic else "m"
