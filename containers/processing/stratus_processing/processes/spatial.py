"""Spatial processes on raster cubes (openEO categories "filter", "masks", "cubes", "math > image"):
filter_bbox, filter_spatial, mask_polygon, apply_kernel, resample_spatial, resample_cube_spatial.

Which pixels a geometry or bounding box covers follows openEO's pixel-centre rule (see
`stratus_processing.geometry`); GeoJSON is EPSG:4326 unless it names another CRS, and bounding boxes
and geometries are reprojected to the cube's CRS. Resampling is GDAL's warper (gdalwarp's methods,
which the openEO `method` options are named after) with NaN as no-data.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError
from rasterio.warp import calculate_default_transform, reproject
from stratus.errors import OpenEOApiException

from stratus_processing.deferred import xr
from stratus_processing import cube as cubes
from stratus_processing import vector_cube as vectors
from stratus_processing.env import EvalEnv
from stratus_processing.geometry import (
    POLYGONAL_TYPES,
    SNAP_TOLERANCE_PX,
    Features,
    GeometryError,
    centre_indices,
    covered_pixels,
    parse_bbox,
    parse_geojson,
    reproject_bounds,
)
from stratus_processing.grid import Grid, parse_crs
from stratus_processing.registry import ProcessArgs, process


class KernelDimensionsUnevenException(OpenEOApiException):
    status_code, code = 400, "KernelDimensionsUneven"
    message_template = "Each dimension of the kernel must have an uneven number of elements."


# openEO resampling method -> GDAL warper algorithm (the openEO names are gdalwarp's `-r` values).
RESAMPLING_METHODS = {
    "near": Resampling.nearest, "bilinear": Resampling.bilinear, "cubic": Resampling.cubic,
    "cubicspline": Resampling.cubic_spline, "lanczos": Resampling.lanczos, "average": Resampling.average,
    "mode": Resampling.mode, "max": Resampling.max, "min": Resampling.min, "med": Resampling.med,
    "q1": Resampling.q1, "q3": Resampling.q3, "rms": Resampling.rms, "sum": Resampling.sum,
}
_BORDER_MODES = {"replicate": "edge", "reflect": "symmetric", "reflect_pixel": "reflect", "wrap": "wrap"}
_ALIGN_CORNERS = ("upper-left", "lower-left", "upper-right", "lower-right")


# --- filters --------------------------------------------------------------------------------------

@process("filter_bbox")
def filter_bbox(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    data = args.get_required("data")
    try:
        bounds, bbox_crs = parse_bbox(args.get_required("extent"))
    except GeometryError as exc:
        raise args.invalid("extent", str(exc)) from None
    if vectors.is_vector_cube(data):
        return _filter_vector_cube_bbox(data, bounds, bbox_crs)
    cube = args.get_cube("data")
    crs, (res_x, res_y) = _crs_and_resolution(cube)
    # Clip the box to the cube's footprint first (in the box's CRS), so a box far beyond the
    # cube's projection area (e.g. the whole globe for a UTM cube) still reprojects cleanly.
    footprint = reproject_bounds(_cube_bounds(cube), crs, bbox_crs) if _has_pixels(cube) else None
    clipped = _intersection(bounds, footprint) if footprint is not None else None
    if clipped is None:
        return cube.isel({cubes.Y: slice(0, 0), cubes.X: slice(0, 0)})
    west, south, east, north = reproject_bounds(clipped, bbox_crs, crs)
    return cube.isel({cubes.Y: centre_indices(cube[cubes.Y].values, south, north, res_y),
                      cubes.X: centre_indices(cube[cubes.X].values, west, east, res_x)})


@process("filter_spatial")
def filter_spatial(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    features = geometries_argument(args, "geometries")
    if not _has_pixels(cube):
        return cube
    grid = cubes.grid_of(cube)
    features = features.to_crs(grid.crs)
    covered = covered_pixels(features.geometries, grid)
    # The cube shrinks to the pixels whose centre lies in the geometries' bounding box, plus any
    # pixel a point or line covers (a point's bounding box holds no pixel centre).
    rows = np.zeros(grid.height, dtype=bool)
    cols = np.zeros(grid.width, dtype=bool)
    bounds = features.bounds()
    if bounds is not None:
        west, south, east, north = bounds
        rows[centre_indices(cube[cubes.Y].values, south, north, grid.resolution[1])] = True
        cols[centre_indices(cube[cubes.X].values, west, east, grid.resolution[0])] = True
    rows |= covered.any(axis=1)
    cols |= covered.any(axis=0)
    row_index, col_index = _span(rows), _span(cols)
    cropped = cube.isel({cubes.Y: row_index, cubes.X: col_index})
    keep = xr.DataArray(covered[np.ix_(row_index, col_index)], dims=(cubes.Y, cubes.X))
    return cropped.where(keep)


@process("mask_polygon")
def mask_polygon(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    features = geometries_argument(args, "mask")
    for geometry in features.non_empty():
        if geometry.geom_type not in POLYGONAL_TYPES:
            raise args.invalid("mask", f"expected Polygon or MultiPolygon geometries, got a {geometry.geom_type}")
    replacement = _replacement(args)
    inside = args.get_optional("inside", False, expected_type=bool)
    if not _has_pixels(cube):
        return cube
    grid = cubes.grid_of(cube)
    covered = covered_pixels(features.to_crs(grid.crs).geometries, grid)
    replaced = xr.DataArray(covered if inside else ~covered, dims=(cubes.Y, cubes.X))
    # No-data stays no-data whatever the replacement (openEO: "No data values in data will be left untouched").
    return cube.where(~replaced | cube.isnull(), replacement)


# --- focal ----------------------------------------------------------------------------------------

@process("apply_kernel")
def apply_kernel(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    """A 2D correlation over y/x: each kernel weight multiplies the pixel at the same offset (the
    kernel's first row lies north, its first column west), summed and multiplied by `factor`.
    Invalid values (NaN, ±inf) count as `replace_invalid`; every output pixel gets a value."""
    cube = args.get_cube("data")
    kernel = _kernel(args)
    factor = args.get_optional("factor", 1, expected_type=(int, float))
    replace_invalid = args.get_optional("replace_invalid", 0, expected_type=(int, float))
    border = args.get_optional("border", 0)
    if isinstance(border, str):
        if border not in _BORDER_MODES:
            raise args.invalid("border", f"'{border}' is not a number or one of: {', '.join(_BORDER_MODES)}")
    elif not isinstance(border, Real) or isinstance(border, bool):
        raise args.invalid("border", "expected a number or one of: " + ", ".join(_BORDER_MODES))
    if not _has_pixels(cube):
        return cube

    other = [d for d in cube.dims if d not in (cubes.Y, cubes.X)]
    ordered = cube.transpose(*other, cubes.Y, cubes.X)
    values = ordered.values
    values = np.where(np.isfinite(values), values, float(replace_invalid))
    half_y, half_x = kernel.shape[0] // 2, kernel.shape[1] // 2
    pad = [(0, 0)] * len(other) + [(half_y, half_y), (half_x, half_x)]
    if isinstance(border, str):
        padded = np.pad(values, pad, mode=_BORDER_MODES[border])
    else:
        padded = np.pad(values, pad, mode="constant", constant_values=float(border))
    height, width = values.shape[-2:]
    result = np.zeros_like(values)
    for (dy, dx), weight in np.ndenumerate(kernel):
        if weight != 0:
            result += weight * padded[..., dy:dy + height, dx:dx + width]
    result *= factor
    return ordered.copy(data=result).transpose(*cube.dims)


# --- resampling -----------------------------------------------------------------------------------

@process("resample_spatial")
def resample_spatial(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    resolution = _resolution(args)
    projection = args.get_optional("projection")
    method = args.get_enum("method", RESAMPLING_METHODS, default=Resampling.nearest)
    align = args.get_enum("align", list(_ALIGN_CORNERS), default="upper-left")
    target_crs = None
    if projection is not None:
        if isinstance(projection, bool) or not isinstance(projection, (int, str)):
            raise args.invalid("projection", "expected an EPSG code or a WKT2 string")
        try:
            target_crs = parse_crs(projection)
        except (CRSError, TypeError, ValueError) as exc:
            raise args.invalid("projection", f"unknown projection {projection!r}: {exc}") from None
    if not _has_pixels(cube):
        return cube
    source = cubes.grid_of(cube)
    if target_crs is None and resolution is None:
        return cube  # neither given: nothing to change
    target = resampled_grid(source, target_crs or source.crs, resolution, align)
    if target == source:
        return cube
    return warp(cube, target, method)


@process("resample_cube_spatial")
def resample_cube_spatial(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    target_cube = args.get_cube("target")
    method = args.get_enum("method", RESAMPLING_METHODS, default=Resampling.nearest)
    if not _has_pixels(target_cube):
        # an empty target grid (e.g. after a filter_bbox that missed the data): empty, in its CRS
        empty = cube.isel({cubes.Y: slice(0, 0), cubes.X: slice(0, 0)})
        return empty.assign_coords({cubes.SPATIAL_REF: target_cube.coords[cubes.SPATIAL_REF]})
    target = cubes.grid_of(target_cube)
    if _has_pixels(cube) and cubes.grid_of(cube) == target:
        return cube
    return warp(cube, target, method)


def resampled_grid(source: Grid, crs: CRS, resolution: tuple[float, float] | None, align: str) -> Grid:
    """The grid covering `source`'s extent in `crs` at `resolution` (default: the source's, or GDAL's
    suggestion when the CRS units change), anchored at the `align` corner of the extent; the
    opposite edges move outwards to a whole number of pixels, so no source pixel is cut off."""
    if crs == source.crs:
        bounds, default_resolution = source.bounds, source.resolution
    else:
        bounds = reproject_bounds(source.bounds, source.crs, crs)
        default_resolution = _default_resolution(source, crs)
    res_x, res_y = resolution or default_resolution
    res_x, res_y = res_x or default_resolution[0], res_y or default_resolution[1]
    west, south, east, north = bounds
    width = max(1, math.ceil((east - west) / res_x - SNAP_TOLERANCE_PX))
    height = max(1, math.ceil((north - south) / res_y - SNAP_TOLERANCE_PX))
    left = west if align.endswith("left") else east - width * res_x
    top = north if align.startswith("upper") else south + height * res_y
    return Grid(crs, Affine(res_x, 0.0, left, 0.0, -res_y, top), width, height)


def warp(cube: xr.DataArray, target: Grid, method: Resampling) -> xr.DataArray:
    """The cube resampled onto `target` with GDAL's warper, every non-spatial slice at once. Each slice
    has its own no-data (UNIFIED_SRC_NODATA=NO): by default GDAL would treat a pixel as no-data only
    where every slice is, and e.g. `average` would return NaN for a block with one NaN in one band."""
    other = [d for d in cube.dims if d not in (cubes.Y, cubes.X)]
    ordered = cube.transpose(*other, cubes.Y, cubes.X)
    leading = ordered.shape[:-2]
    destination = np.full((int(np.prod(leading, dtype=np.int64)), target.height, target.width), np.nan,
                          dtype=cubes.CUBE_DTYPE)
    if _has_pixels(cube) and destination.size:
        source = cubes.grid_of(cube)
        reproject(source=np.ascontiguousarray(ordered.values.reshape(-1, source.height, source.width)),
                  destination=destination, src_transform=source.transform, src_crs=source.crs,
                  src_nodata=np.nan, dst_transform=target.transform, dst_crs=target.crs, dst_nodata=np.nan,
                  resampling=method, UNIFIED_SRC_NODATA="NO")
    return on_grid(ordered, target, destination.reshape(*leading, target.height, target.width)).transpose(*cube.dims)


def on_grid(cube: xr.DataArray, grid: Grid, values: np.ndarray) -> xr.DataArray:
    """A cube with `cube`'s non-spatial dimensions and labels, `values` shaped (..., y, x) on `grid`."""
    other = [d for d in cube.dims if d not in (cubes.Y, cubes.X)]
    coords: dict[str, Any] = {name: coord for name, coord in cube.coords.items()
                              if cubes.Y not in coord.dims and cubes.X not in coord.dims and name != cubes.SPATIAL_REF}
    coords[cubes.Y] = grid.y_coords()
    coords[cubes.X] = grid.x_coords()
    coords[cubes.SPATIAL_REF] = cubes.spatial_ref_coord(grid)
    return xr.DataArray(values, dims=(*other, cubes.Y, cubes.X), coords=coords, attrs=dict(cube.attrs))


def geometries_argument(args: ProcessArgs, name: str) -> Features:
    """A GeoJSON or vector-cube argument as features (in their own CRS)."""
    value = args.get_required(name)
    if vectors.is_vector_cube(value):
        return vectors.features_of(value)
    try:
        return parse_geojson(value)
    except GeometryError as exc:
        raise args.invalid(name, str(exc)) from None


# --- internals ------------------------------------------------------------------------------------

def _filter_vector_cube_bbox(cube: xr.DataArray, bounds: tuple[float, float, float, float],
                             crs: CRS) -> xr.DataArray:
    """Keep the geometries fully within the box (openEO: empty ones and those crossing it go)."""
    geometries = vectors.features_of(cube).to_crs(crs).geometries
    box = shapely.box(*bounds)
    keep = [i for i, g in enumerate(geometries) if g is not None and g.within(box)]
    return cube.isel({vectors.GEOMETRY: keep})


def _crs_and_resolution(cube: xr.DataArray) -> tuple[CRS, tuple[float, float]]:
    """From the grid reference, which (unlike `grid_of`) an empty cube still has."""
    ref = cube.coords[cubes.SPATIAL_REF].attrs
    res_x, res_y = ref["resolution"]
    return CRS.from_wkt(ref["crs_wkt"]), (float(res_x), float(res_y))


def _has_pixels(cube: xr.DataArray) -> bool:
    return cube.sizes[cubes.Y] > 0 and cube.sizes[cubes.X] > 0


def _cube_bounds(cube: xr.DataArray) -> tuple[float, float, float, float]:
    return cubes.grid_of(cube).bounds


def _intersection(a: tuple[float, float, float, float],
                  b: tuple[float, float, float, float]) -> tuple[float, float, float, float] | None:
    west, south = max(a[0], b[0]), max(a[1], b[1])
    east, north = min(a[2], b[2]), min(a[3], b[3])
    if west > east or south > north:
        return None
    return west, south, east, north


def _span(selected: np.ndarray) -> np.ndarray:
    """Indices from the first to the last selected position (a contiguous range), empty if none."""
    hits = np.flatnonzero(selected)
    return np.arange(hits[0], hits[-1] + 1) if hits.size else hits


def _replacement(args: ProcessArgs) -> float:
    replacement = args.get_optional("replacement")
    if replacement is None:
        return np.nan
    if isinstance(replacement, bool):
        return float(replacement)
    if isinstance(replacement, Real):
        return float(replacement)
    raise args.invalid("replacement", "this back-end's cubes are numeric: use a number, a boolean or null")


def _kernel(args: ProcessArgs) -> np.ndarray:
    kernel = args.get_required("kernel", expected_type=list)
    if (not kernel or not all(isinstance(row, list) and row for row in kernel)
            or not all(isinstance(v, Real) and not isinstance(v, bool) for row in kernel for v in row)):
        raise args.invalid("kernel", "expected a non-empty two-dimensional array of numbers")
    if len({len(row) for row in kernel}) != 1:
        raise args.invalid("kernel", "all rows of the kernel must have the same number of elements")
    weights = np.asarray(kernel, dtype=np.float64)
    if weights.shape[0] % 2 == 0 or weights.shape[1] % 2 == 0:
        raise KernelDimensionsUnevenException()
    return weights


def _resolution(args: ProcessArgs) -> tuple[float, float] | None:
    """(x, y) pixel size, or None when unchanged (0, the default)."""
    value = args.get_optional("resolution", 0)
    if isinstance(value, bool):
        raise args.invalid("resolution", "expected a number or an array of two numbers")
    if isinstance(value, Real):
        pair = (float(value), float(value))
    elif isinstance(value, list) and len(value) == 2 and all(
            isinstance(v, Real) and not isinstance(v, bool) for v in value):
        pair = (float(value[0]), float(value[1]))
    else:
        raise args.invalid("resolution", "expected a number or an array of two numbers")
    if any(v < 0 or not math.isfinite(v) for v in pair):
        raise args.invalid("resolution", "must be 0 (unchanged) or positive")
    return None if pair == (0.0, 0.0) else pair


def _default_resolution(source: Grid, crs: CRS) -> tuple[float, float]:
    """The source's pixel size when both CRSs are projected in the same unit (e.g. UTM zone to UTM
    zone: 10 m stays 10 m), else the size GDAL suggests for the warp."""
    if (not source.crs.is_geographic and not crs.is_geographic
            and source.crs.linear_units == crs.linear_units):
        return source.resolution
    transform, _, _ = calculate_default_transform(source.crs, crs, source.width, source.height, *source.bounds)
    return transform.a, -transform.e
