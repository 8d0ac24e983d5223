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
import xarray as xr
from stratus.errors import OpenEOApiException

from stratus_processing import cube as cubes
from stratus_processing import vector_cube as vectors
from stratus_processing.env import EvalEnv
from stratus_processing.geometry import PixelWindow, pixel_window
from stratus_processing.processes.cubes import returns_statistics, statistic_names, statistics_as_bands
from stratus_processing.processes.spatial import geometries_argument
from stratus_processing.registry import ProcessArgs, process

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
    cube = args.get_cube("data")
    features = geometries_argument(args, "geometries")
    reducer = args.get_callback("reducer")
    target_dimension = args.get_optional("target_dimension", expected_type=str)
    context = args.get_optional("context")
    other = [str(d) for d in cube.dims if d not in (cubes.Y, cubes.X)]
    if target_dimension is not None and target_dimension in (*other, vectors.GEOMETRY):
        raise TargetDimensionExistsException()

    ordered = cube.transpose(*other, cubes.Y, cubes.X)
    other_shape = ordered.shape[:-2]
    other_coords = {name: coord for name, coord in cube.coords.items()
                    if cubes.Y not in coord.dims and cubes.X not in coord.dims and name != cubes.SPATIAL_REF}
    n = len(features)
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
    return vectors.make_vector_cube(features, result, dims=dims, coords=coords, attrs=cube.attrs)


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
