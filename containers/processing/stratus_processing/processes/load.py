"""Loading data (openEO category "import"): `load_collection` from the STAC catalog."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np
import xarray as xr
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.warp import transform_bounds

from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.errors import NoDataAvailableException, TemporalExtentEmptyException
from stratus_processing.grid import WGS84, parse_crs
from stratus_processing.io.load import load_cube, target_grid
from stratus_processing.io.stac import BandInfo, Collection
from stratus_processing.registry import ProcessArgs, process

# Largest cube load_collection materialises, in bytes: a quarter of the 8 GiB Fargate task
# (resources.PROCESSING_MEMORY_MB) leaves room for the intermediate cubes of band math and reducers.
MAX_CUBE_BYTES = 2 * 1024**3

_GEOJSON_TYPES = {"Polygon", "MultiPolygon", "Feature", "FeatureCollection", "GeometryCollection", "Point",
                  "MultiPoint", "LineString", "MultiLineString"}


@process("load_collection")
def load_collection(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    catalog = env.require_catalog()
    collection = catalog.collection(args.get_required("id", expected_type=str))
    extent = _spatial_extent(args)
    start, end = _temporal_extent(args)
    bands = _bands(args, collection)
    if args.get_optional("properties"):
        raise args.invalid("properties", "filtering by metadata properties is not supported yet")

    bbox_wgs84 = transform_bounds(extent[0], WGS84, *extent[1], densify_pts=21) if extent else None
    items = catalog.search(collection.id, bbox=bbox_wgs84, start=start, end=end)
    items = [item for item in items if any(b.name in item.assets for b in bands)]
    if not items:
        raise NoDataAvailableException()
    grid = target_grid(items[0], bands, extent, items)
    if grid.width == 0 or grid.height == 0:
        raise NoDataAvailableException()
    days = len({item.datetime.date() for item in items})
    size = days * len(bands) * grid.width * grid.height * np.dtype(cubes.CUBE_DTYPE).itemsize
    if size > MAX_CUBE_BYTES:
        raise args.invalid("spatial_extent", f"the data for this extent would take {size / 1024**3:.1f} GiB "
                                             f"({days} dates × {len(bands)} bands × {grid.width} × {grid.height} px), "
                                             f"more than the {MAX_CUBE_BYTES / 1024**3:.0f} GiB a job may load; "
                                             f"limit the spatial or temporal extent or the bands")

    band_list = ", ".join(b.name for b in bands)
    env.reporter.log(
        f"load_collection: {len(items)} items of '{collection.id}' × bands {band_list} for the extent "
        f"({_describe_interval(start, end)}); reading onto a {grid.width} × {grid.height} px grid at "
        f"{grid.resolution[0]:g} m in {_crs_name(grid.crs)}", path=args.path)
    return load_cube(items, bands, grid, env.rasters)


def _spatial_extent(args: ProcessArgs) -> tuple[CRS, tuple[float, float, float, float]] | None:
    extent = args.get_required("spatial_extent")
    if extent is None:
        return None
    if not isinstance(extent, Mapping):
        raise args.invalid("spatial_extent", "expected a bounding box object or null")
    if extent.get("type") in _GEOJSON_TYPES:
        raise args.invalid("spatial_extent", "GeoJSON geometries are not supported yet, use a bounding box")
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
    return crs, (west, south, east, north)


def _temporal_extent(args: ProcessArgs) -> tuple[datetime | None, datetime | None]:
    interval = args.get_required("temporal_extent")
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


def _bands(args: ProcessArgs, collection: Collection) -> list[BandInfo]:
    requested = args.get_optional("bands", expected_type=list)
    if requested is None:
        return collection.bands
    if not requested or not all(isinstance(b, str) for b in requested):
        raise args.invalid("bands", "expected a non-empty array of band names")
    try:
        return collection.resolve_bands(requested)
    except KeyError as exc:
        known = ", ".join(b.name for b in collection.bands)
        raise args.invalid("bands", f"collection '{collection.id}' has no band '{exc.args[0]}' "
                                    f"(bands: {known})") from None


def _describe_interval(start: datetime | None, end: datetime | None) -> str:
    def show(moment: datetime | None) -> str:
        return cubes.isoformat_utc(moment) if moment else "open"
    return f"{show(start)} to {show(end)}, end excluded"


def _crs_name(crs: CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()
