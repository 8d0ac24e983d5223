"""Vector geometries against raster grids: GeoJSON parsing, reprojection and which pixels a geometry
covers, by the openEO rules shared by filter_spatial, mask_polygon and aggregate_spatial:

- a polygon covers the pixels whose centre intersects it (boundary included, as in Simple
  Features), up to a float tolerance so that coordinates that went through a projection
  round trip (404860.0000000001) don't drop a pixel centre that lies exactly on an edge;
- a point covers the pixel whose centre is closest, i.e. the pixel it lies in;
- a line covers the pixels whose centres are closest to a point of the line, i.e. every pixel it
  passes through.

GeoJSON is EPSG:4326 (lon/lat, RFC 7946) unless it carries the legacy `crs` member
(`{"type": "name", "properties": {"name": "EPSG:32632"}}`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.features import rasterize
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from stratus_processing.grid import WGS84, Grid, parse_crs, transform_bounds, transform_geom

# Fraction of a pixel within which a pixel centre still counts as intersecting a polygon, and
# within which a centre counts as inside a bounding box: absorbs the float noise of reprojected
# coordinates without moving a real boundary (same rule as `grid._SNAP_TOLERANCE_PX`).
SNAP_TOLERANCE_PX = 1e-6
# Polygon windows up to this many pixels are masked by testing pixel centres with shapely (~0.1 us a pixel)
# rather than by GDAL's rasteriser, whose fixed cost per call is ~10-30 ms (see `_centres_tested`).
_CENTRE_TEST_MAX_PX = 262_144
# Longest edge reprojected as a straight line, in degrees for geographic CRSs and metres for
# projected ones. A straight edge in the source CRS (e.g. along a parallel in lon/lat) is a curve in
# the target CRS: over 1° at 45°N it bows ~120 m (12 px of 10 m) from the chord, so longer edges get
# intermediate vertices. Up to ~1 km the bow stays below ~2 cm, and shorter edges are kept as they
# are, so a polygon drawn on the cube's grid and sent in lon/lat still hits the same pixel centres.
_MAX_STRAIGHT_EDGE_DEGREES = 0.01
_MAX_STRAIGHT_EDGE_METRES = 1000.0
# Points sampled per edge when reprojecting a bounding box (as `transform_bounds` recommends).
_BBOX_DENSIFY_POINTS = 21

GEOJSON_GEOMETRY_TYPES = frozenset({"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                                    "MultiPolygon"})
POLYGONAL_TYPES = frozenset({"Polygon", "MultiPolygon"})


class GeometryError(ValueError):
    """The geometry argument is not usable; the message says why (processes turn it into
    ProcessParameterInvalid for the argument)."""


@dataclass(frozen=True)
class Features:
    """Geometries with their GeoJSON properties and ids, all in one CRS. A `None` geometry is an
    empty or null one: it keeps its place (and label) but covers no pixel."""

    geometries: tuple[BaseGeometry | None, ...]
    properties: tuple[dict[str, Any], ...]
    ids: tuple[Any, ...]
    crs: CRS

    def __len__(self) -> int:
        return len(self.geometries)

    def to_crs(self, crs: CRS) -> Features:
        return replace(self, geometries=tuple(reproject_geometries(self.geometries, self.crs, crs)), crs=crs)

    def non_empty(self) -> list[BaseGeometry]:
        return [g for g in self.geometries if g is not None]

    def bounds(self) -> tuple[float, float, float, float] | None:
        """(west, south, east, north) of all non-empty geometries, None when there are none."""
        present = self.non_empty()
        if not present:
            return None
        return tuple(shapely.total_bounds(np.array(present, dtype=object)).tolist())  # type: ignore[return-value]


def parse_geojson(value: Any) -> Features:
    """A GeoJSON geometry, Feature or FeatureCollection as features in its CRS (EPSG:4326 unless it
    names another one). GeometryCollection is not supported (as the openEO processes declare)."""
    if not isinstance(value, Mapping) or not isinstance(value.get("type"), str):
        raise GeometryError("expected a GeoJSON object (Polygon, MultiPolygon, Feature, FeatureCollection, ...)")
    crs = _geojson_crs(value)
    kind = value["type"]
    if kind == "FeatureCollection":
        features = value.get("features")
        if not isinstance(features, list):
            raise GeometryError("a FeatureCollection needs an array of features")
        parsed = [_parse_feature(f) for f in features]
    elif kind == "Feature":
        parsed = [_parse_feature(value)]
    else:
        parsed = [(_parse_geometry(value), {}, None)]
    return Features(tuple(p[0] for p in parsed), tuple(p[1] for p in parsed), tuple(p[2] for p in parsed), crs)


def reproject_geometries(geometries: Sequence[BaseGeometry | None], source: CRS,
                         target: CRS) -> list[BaseGeometry | None]:
    """Geometries from `source` to `target` CRS, densified first so long edges follow the projection."""
    if source == target:
        return list(geometries)
    present = [i for i, g in enumerate(geometries) if g is not None]
    if not present:
        return list(geometries)
    max_edge = _max_straight_edge(source)
    densified = [mapping(shapely.segmentize(geometries[i], max_edge)) for i in present]
    projected = transform_geom(source, target, densified)
    result: list[BaseGeometry | None] = list(geometries)
    for index, geojson in zip(present, projected, strict=True):
        geometry = shape(geojson)
        result[index] = None if geometry.is_empty else geometry
    return result


def reproject_bounds(bounds: tuple[float, float, float, float], source: CRS,
                     target: CRS) -> tuple[float, float, float, float]:
    """The bounding box in `target` CRS that encloses `bounds` (edges sampled, not just corners)."""
    if source == target:
        return bounds
    return transform_bounds(source, target, *bounds, densify_pts=_BBOX_DENSIFY_POINTS)


def parse_bbox(value: Any) -> tuple[tuple[float, float, float, float], CRS]:
    """An openEO bounding box `{west, south, east, north, crs?}` (crs defaults to EPSG:4326)."""
    if not isinstance(value, Mapping):
        raise GeometryError("expected a bounding box object with west, south, east and north")
    try:
        west, south, east, north = (float(value[k]) for k in ("west", "south", "east", "north"))
    except (KeyError, TypeError, ValueError):
        raise GeometryError("a bounding box needs numeric west, south, east and north") from None
    if west > east or south > north:
        raise GeometryError("west must not be greater than east, nor south greater than north")
    crs_value = value.get("crs")
    return (west, south, east, north), _parse_crs_value(4326 if crs_value is None else crs_value)


def centre_indices(centres: np.ndarray, low: float, high: float, resolution: float) -> np.ndarray:
    """Indices of the pixel centres within [low, high], with the snap tolerance."""
    tolerance = SNAP_TOLERANCE_PX * abs(resolution)
    return np.flatnonzero((centres >= low - tolerance) & (centres <= high + tolerance))


@dataclass(frozen=True)
class PixelWindow:
    """The pixels one geometry covers: a window of the grid and a mask within it."""

    rows: slice
    cols: slice
    mask: np.ndarray  # bool, shaped (rows, cols)

    @property
    def count(self) -> int:
        return int(self.mask.sum())


def pixel_window(geometry: BaseGeometry | None, grid: Grid) -> PixelWindow | None:
    """The pixels of `grid` the geometry covers (geometry in the grid's CRS); None when none."""
    if geometry is None or geometry.is_empty or grid.width == 0 or grid.height == 0:
        return None
    window = _bounding_window(geometry.bounds, grid)
    if window is None:
        return None
    rows, cols = window
    height, width = rows.stop - rows.start, cols.stop - cols.start
    transform = grid.transform @ Affine.translation(cols.start, rows.start)
    mask = np.zeros((height, width), dtype=bool)
    polygons, others = _split_by_dimension(geometry)
    if polygons:
        mask |= _polygon_centres(polygons, transform, (height, width), grid)
    if others:
        mask |= rasterize(others, out_shape=(height, width), transform=transform, all_touched=True,
                          fill=0, default_value=1, dtype="uint8").astype(bool)
    if not mask.any():
        return None
    return PixelWindow(rows, cols, mask)


def covered_pixels(geometries: Sequence[BaseGeometry | None], grid: Grid) -> np.ndarray:
    """A (height, width) bool mask of the pixels covered by any of the geometries."""
    mask = np.zeros(grid.shape, dtype=bool)
    for geometry in geometries:
        window = pixel_window(geometry, grid)
        if window is not None:
            mask[window.rows, window.cols] |= window.mask
    return mask


# --- internals ----------------------------------------------------------------------------------

def _parse_feature(value: Any) -> tuple[BaseGeometry | None, dict[str, Any], Any]:
    if not isinstance(value, Mapping) or value.get("type") != "Feature":
        raise GeometryError("every element of a FeatureCollection must be a GeoJSON Feature")
    geometry = value.get("geometry")
    properties = value.get("properties")
    return (None if geometry is None else _parse_geometry(geometry),
            dict(properties) if isinstance(properties, Mapping) else {}, value.get("id"))


def _parse_geometry(value: Any) -> BaseGeometry | None:
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "GeometryCollection":
        raise GeometryError("the GeoJSON type GeometryCollection is not supported")
    if kind not in GEOJSON_GEOMETRY_TYPES:
        raise GeometryError(f"unsupported GeoJSON geometry type {kind!r}")
    try:
        geometry = shape(value)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, shapely.errors.ShapelyError) as exc:
        raise GeometryError(f"invalid GeoJSON {kind}: {exc}") from None
    if geometry.is_empty:
        return None
    if not geometry.is_valid and geometry.geom_type in POLYGONAL_TYPES:
        # e.g. a self-touching ring: same area, but predicates behave
        geometry = shapely.make_valid(geometry)
    return geometry


def _geojson_crs(value: Mapping[str, Any]) -> CRS:
    member = value.get("crs")
    if member is None:
        return WGS84
    name = member.get("properties", {}).get("name") if isinstance(member, Mapping) else member
    if name is None:
        raise GeometryError(f"unsupported GeoJSON crs member {member!r}")
    if isinstance(name, str) and name.upper().endswith("CRS84"):
        return WGS84  # OGC:CRS84 is lon/lat WGS84, which is what EPSG:4326 means here
    return _parse_crs_value(name)


def _parse_crs_value(value: Any) -> CRS:
    try:
        return parse_crs(value)
    except (CRSError, TypeError, ValueError) as exc:
        raise GeometryError(f"unknown crs {value!r}: {exc}") from None


def _max_straight_edge(crs: CRS) -> float:
    if crs.is_geographic:
        return _MAX_STRAIGHT_EDGE_DEGREES
    _, metres_per_unit = crs.linear_units_factor
    return _MAX_STRAIGHT_EDGE_METRES / metres_per_unit


def _bounding_window(bounds: tuple[float, float, float, float], grid: Grid) -> tuple[slice, slice] | None:
    """Rows and columns of the grid under the bounds, one pixel of margin, clipped to the grid."""
    west, south, east, north = bounds
    res_x, res_y = grid.resolution
    col0 = math.floor((west - grid.transform.c) / res_x) - 1
    col1 = math.ceil((east - grid.transform.c) / res_x) + 1
    row0 = math.floor((grid.transform.f - north) / res_y) - 1
    row1 = math.ceil((grid.transform.f - south) / res_y) + 1
    col0, col1 = max(col0, 0), min(col1, grid.width)
    row0, row1 = max(row0, 0), min(row1, grid.height)
    if col0 >= col1 or row0 >= row1:
        return None
    return slice(row0, row1), slice(col0, col1)


def _split_by_dimension(geometry: BaseGeometry) -> tuple[list[BaseGeometry], list[BaseGeometry]]:
    parts = shapely.get_parts(geometry)
    polygons = [p for p in parts if p.geom_type in POLYGONAL_TYPES and not p.is_empty]
    others = [p for p in parts if p.geom_type not in POLYGONAL_TYPES and not p.is_empty]
    return polygons, others


def _polygon_centres(polygons: list[BaseGeometry], transform: Affine, shape_: tuple[int, int],
                     grid: Grid) -> np.ndarray:
    """Pixels whose centre intersects the polygons, a centre on an edge (within the snap tolerance) counting."""
    union = shapely.union_all(polygons) if len(polygons) > 1 else polygons[0]
    shapely.prepare(union)
    tolerance = SNAP_TOLERANCE_PX * min(grid.resolution)
    if shape_[0] * shape_[1] <= _CENTRE_TEST_MAX_PX:
        return _centres_tested(union, transform, shape_, tolerance)
    # GDAL's scanline rasteriser decides the pixels clearly inside; the pixels it merely touches (the boundary
    # ring) are decided exactly by shapely, with the snap tolerance
    inside = rasterize(polygons, out_shape=shape_, transform=transform, all_touched=False,
                       fill=0, default_value=1, dtype="uint8").astype(bool)
    touched = rasterize(polygons, out_shape=shape_, transform=transform, all_touched=True,
                        fill=0, default_value=1, dtype="uint8").astype(bool)
    rows, cols = np.nonzero(touched & ~inside)
    if rows.size:
        xs = transform.c + (cols + 0.5) * transform.a
        ys = transform.f + (rows + 0.5) * transform.e
        hits = shapely.dwithin(union, shapely.points(xs, ys), tolerance)
        inside[rows[hits], cols[hits]] = True
    return inside


def _centres_tested(union: BaseGeometry, transform: Affine, shape_: tuple[int, int],
                    tolerance: float) -> np.ndarray:
    """The same pixels as the rasteriser path, by testing every centre (for small windows: each `rasterize`
    call builds a GDAL environment, and with AWS credentials in the environment a boto3 session, ~10-30 ms,
    rasterio#3331; per polygon of an `aggregate_spatial` that was most of the time)."""
    rows, cols = np.indices(shape_)
    xs = transform.c + (cols + 0.5) * transform.a
    ys = transform.f + (rows + 0.5) * transform.e
    hit = shapely.intersects_xy(union, xs, ys)
    # a centre off the polygon by no more than the tolerance lies inside this (slightly larger) buffer
    near = ~hit & shapely.contains_xy(shapely.buffer(union, 2 * tolerance), xs, ys)
    if near.any():
        hit[near] = shapely.dwithin(union, shapely.points(xs[near], ys[near]), tolerance)
    return hit
