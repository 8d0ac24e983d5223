"""Raster to vector (openEO category "aggregate"): `aggregate_spatial`, zonal statistics per geometry.

The result is a vector cube (see `stratus_processing.vector_cube`): dimension `geometry` first, one
label per input geometry, then the cube's other dimensions (e.g. `t`, `bands`).

Pixels per geometry follow openEO's rule (see `stratus_processing.geometry`): for polygons the
pixels whose centre intersects the polygon, for points the pixel containing the point, for lines
every pixel the line passes through. A pixel may count for several geometries. The geometries are
reprojected to the cube's CRS first (GeoJSON is EPSG:4326 unless it names a CRS).
"""

from __future__ import annotations

from collections import defaultdict
from numbers import Real
from typing import Any

import numpy as np
from stratus.errors import InternalException, OpenEOApiException

from stratus_processing.deferred import xr
from stratus_processing import cube as cubes
from stratus_processing import vector_cube as vectors
from stratus_processing.env import EvalEnv
from stratus_processing.geometry import PixelWindow, pixel_window
from stratus_processing.processes.cubes import returns_statistics, statistic_names, statistics_as_bands
from stratus_processing.processes.spatial import geometries_argument
from stratus_processing.partials import (
    ORDERED_STATISTICS,
    Parts,
    combinable_statistics,
    coords_from_json,
    coords_to_json,
)
from stratus_processing.registry import ProcessArgs, process
from stratus_processing.tiling import cropped_to

# The dimension the reducer reduces: the pixels of one geometry (`env.array_dimension` in the callback).
PIXELS = "pixels"
# The labels of aggregate_spatial's `target_dimension` (openEO: value, then the two counts).
TARGET_LABELS = ("value", "total_count", "valid_count")
# The dimension of a multi-statistics reducer's values before they become bands.
STATISTICS = "__statistics__"


class TargetDimensionExistsException(OpenEOApiException):
    status_code, code = 400, "TargetDimensionExists"
    message_template = "A dimension with the specified target dimension name already exists."


@process("aggregate_spatial")
def aggregate_spatial(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    fanout = env.fanout
    features = geometries_argument(args, "geometries")
    reducer = args.get_callback("reducer")
    target_dimension = args.get_optional("target_dimension", expected_type=str)
    if fanout is not None and fanout.combining:
        return _combined(args, env, features, reducer, target_dimension)
    cube = args.get_cube("data")
    if fanout is not None and fanout.window is not None:
        cube = cropped_to(cube, fanout.window)  # the tile's own pixels: its halo belongs to its neighbours
    context = args.get_optional("context")
    other = [str(d) for d in cube.dims if d not in (cubes.Y, cubes.X)]
    if target_dimension is not None and target_dimension in (*other, vectors.GEOMETRY):
        raise TargetDimensionExistsException()
    parts: Parts | None = None
    combinable = combinable_statistics(reducer) if fanout is not None else None
    if fanout is not None and combinable is None:
        raise InternalException(message="aggregate_spatial's reducer cannot be combined from the tiles of a "
                                        "fanned-out run; the run should have been one task")

    ordered = cube.transpose(*other, cubes.Y, cubes.X)
    other_shape = ordered.shape[:-2]
    other_coords = {name: coord for name, coord in cube.coords.items()
                    if cubes.Y not in coord.dims and cubes.X not in coord.dims and name != cubes.SPATIAL_REF}
    n = len(features)
    if combinable is not None:
        parts = Parts.empty((n, *other_shape), ordered=any(s.name in ORDERED_STATISTICS for s in combinable))
    aggregated = np.full((n, *other_shape), np.nan, dtype=cubes.CUBE_DTYPE)
    total_count = np.zeros((n, *other_shape), dtype=cubes.CUBE_DTYPE)
    valid_count = np.zeros((n, *other_shape), dtype=cubes.CUBE_DTYPE)

    windows: dict[int, PixelWindow] = {}
    if cube.sizes[cubes.Y] and cube.sizes[cubes.X]:
        grid = cubes.grid_of(cube)
        for index, geometry in enumerate(features.to_crs(grid.crs).geometries):
            window = pixel_window(geometry, grid)
            if window is not None:
                windows[index] = window

    # Geometries with the same number of pixels are reduced together (one callback call, stacked
    # along `geometry`); geometries without any pixel keep no-data and zero counts.
    by_count: dict[int, list[int]] = defaultdict(list)
    for index, window in windows.items():
        by_count[window.count].append(index)
    values = ordered.values
    callback_env = env.for_array_dimension(PIXELS)
    statistics: list[str] | None = None  # names of a multi-statistics reducer's values
    for count, indices in by_count.items():
        pixels = np.stack([values[..., windows[i].rows, windows[i].cols][..., windows[i].mask] for i in indices])
        if parts is not None:
            parts.set(indices, pixels, np.stack([_grid_positions(windows[i], fanout) for i in indices]))
        data = xr.DataArray(pixels, dims=(vectors.GEOMETRY, *other, PIXELS), coords=other_coords)
        reduced = reducer(callback_env, data=data, context=context)
        if isinstance(reduced, xr.DataArray) and PIXELS in reduced.dims and returns_statistics(reducer):
            # array_create([mean(data), sd(data), ...]): one value per statistic, along `pixels`
            if statistics is None:
                statistics = statistic_names(reducer, reduced.sizes[PIXELS])
                aggregated = np.full((*aggregated.shape, len(statistics)), np.nan, dtype=cubes.CUBE_DTYPE)
            elif reduced.sizes[PIXELS] != len(statistics):
                raise args.invalid("reducer", "it must compute the same number of values for every geometry")
            reduced = reduced.rename({PIXELS: STATISTICS}).drop_vars(
                [c for c, coord in reduced.coords.items() if PIXELS in coord.dims])
            aggregated[indices] = _reduced_values(args, reduced, (len(indices), *other_shape, len(statistics)),
                                                  [*other, STATISTICS])
        else:
            if statistics is not None:
                raise args.invalid("reducer", "it must compute the same number of values for every geometry")
            aggregated[indices] = _reduced_values(args, reduced, (len(indices), *other_shape), other)
        total_count[indices] = count
        valid_count[indices] = np.isfinite(pixels).sum(axis=-1)

    dims = list(other)
    coords = dict(other_coords)
    result = aggregated
    if statistics is not None:
        if target_dimension is not None:
            raise args.invalid("target_dimension", "is not supported with a reducer computing several values")
        spread = statistics_as_bands(xr.DataArray(aggregated, dims=(vectors.GEOMETRY, *other, STATISTICS),
                                                  coords=other_coords), STATISTICS, statistics)
        dims = [str(d) for d in spread.dims if d != vectors.GEOMETRY]
        coords = {name: coord for name, coord in spread.coords.items() if vectors.GEOMETRY not in coord.dims}
        result = spread.values
    if target_dimension is not None:
        result = np.stack([aggregated, total_count, valid_count], axis=-1)
        dims.append(target_dimension)
        coords[target_dimension] = list(TARGET_LABELS)
    env.reporter.log(f"aggregate_spatial: {n} geometries, {len(windows)} of them cover pixels of the cube",
                     path=args.path)
    if fanout is not None and parts is not None:
        fanout.partials[args.node_id or ""] = {"dims": other, "shape": list(other_shape),
                                               "coords": coords_to_json(other_coords), "attrs": dict(cube.attrs),
                                               **parts.to_json()}
    return vectors.make_vector_cube(features, result, dims=dims, coords=coords, attrs=cube.attrs)


def _grid_positions(window: PixelWindow, fanout: Any) -> np.ndarray:
    """Where a geometry's pixels lie in the whole grid, in the order the reducer gets them (row by row)."""
    rows, cols = np.nonzero(window.mask)
    row_off, col_off = fanout.origin
    return (row_off + window.rows.start + rows) * _ROW_STRIDE + col_off + window.cols.start + cols


# Positions as one number (exact in float64 for grids under 2**26 px a side).
_ROW_STRIDE = 2**26


def _combined(args: ProcessArgs, env: EvalEnv, features: Any, reducer: Any,
              target_dimension: str | None) -> xr.DataArray:
    """The combine step of a fanned-out run: the vector cube the single task computes, from the parts
    of every tile (`stratus_processing.partials`)."""
    document = env.fanout.partials.get(args.node_id or "") if env.fanout is not None else None
    statistics = combinable_statistics(reducer)
    if document is None or statistics is None:
        raise InternalException(message=f"The tiles of this run left no parts of aggregate_spatial node "
                                        f"'{args.node_id}' to combine.")
    other = list(document["dims"])
    if target_dimension is not None and target_dimension in (*other, vectors.GEOMETRY):
        raise TargetDimensionExistsException()
    other_coords = coords_from_json(document["coords"])
    parts: Parts = document["parts"]
    n = len(features)
    if parts.arrays["total"].shape[0] != n:
        raise InternalException(message=f"aggregate_spatial node '{args.node_id}': the tiles aggregated "
                                        f"{parts.arrays['total'].shape[0]} geometries, the graph has {n}.")
    dims, coords = list(other), dict(other_coords)
    if returns_statistics(reducer):
        names = statistic_names(reducer, len(statistics))
        aggregated = np.stack([parts.statistic(s) for s in statistics], axis=-1)
        if target_dimension is not None:
            raise args.invalid("target_dimension", "is not supported with a reducer computing several values")
        spread = statistics_as_bands(xr.DataArray(aggregated, dims=(vectors.GEOMETRY, *other, STATISTICS),
                                                  coords=other_coords), STATISTICS, names)
        dims = [str(d) for d in spread.dims if d != vectors.GEOMETRY]
        coords = {name: coord for name, coord in spread.coords.items() if vectors.GEOMETRY not in coord.dims}
        result = spread.values
    else:
        aggregated = parts.statistic(statistics[0])
        result = aggregated
    if target_dimension is not None:
        result = np.stack([aggregated, parts.arrays["total"], parts.arrays["count"]], axis=-1)
        dims.append(target_dimension)
        coords[target_dimension] = list(TARGET_LABELS)
    covered = int((parts.arrays["total"].reshape(n, -1)[:, 0] > 0).sum()) if n else 0
    env.reporter.log(f"aggregate_spatial: {n} geometries, {covered} of them cover pixels of the cube "
                     f"(combined from the tiles)", path=args.path)
    return vectors.make_vector_cube(features, result, dims=dims, coords=coords, attrs=document.get("attrs", {}))


def _reduced_values(args: ProcessArgs, reduced: Any, shape: tuple[int, ...], other: list[str]) -> np.ndarray:
    """The reducer's result as an array shaped (geometries, *other dims)."""
    if isinstance(reduced, xr.DataArray):
        if PIXELS in reduced.dims:
            raise args.invalid("reducer", "it must compute a single value per geometry, but its result still "
                                          "has the pixels of the geometry as a dimension")
        unexpected = [d for d in reduced.dims if d not in (vectors.GEOMETRY, *other)]
        if unexpected:
            raise args.invalid("reducer", f"its result has the unexpected dimension(s) {unexpected}")
        order = [vectors.GEOMETRY, *other]
        missing = [d for d in order if d not in reduced.dims]
        expanded = reduced.expand_dims(missing) if missing else reduced
        return np.broadcast_to(expanded.transpose(*order).values.astype(cubes.CUBE_DTYPE), shape)
    if reduced is None:
        return np.full(shape, np.nan)
    if isinstance(reduced, (Real, np.number, np.bool_)):
        return np.full(shape, float(reduced))
    raise args.invalid("reducer", f"expected a number per geometry, got {type(reduced).__name__}")
