"""apply_neighborhood (openEO category "cubes"): a process run on windows of x and y, each with an
overlap of its neighbours' pixels (no-data beyond the cube's edge), whose overlap is cut off again.

Windows split x and y only (in px, or in m or the CRS's unit when no unit is given); every other
dimension is passed whole (`size` null). The graph is evaluated on the whole cube, never tile by
tile (`tiling` does not list it as pixel-local): a window's result may depend on any of its pixels.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np
from affine import Affine
from stratus.errors import OpenEOApiException

from stratus_processing.deferred import xr
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.errors import DimensionNotAvailableException
from stratus_processing.grid import Grid
from stratus_processing.registry import ProcessArgs, process


class DataCubePropertiesImmutableException(OpenEOApiException):
    status_code, code = 400, "DataCubePropertiesImmutable"
    message_template = ("The dimension properties (name, type, labels, reference system and resolution) must "
                        "remain unchanged.")


@process("apply_neighborhood")
def apply_neighborhood(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    callback = args.get_callback("process")
    context = args.get_optional("context")
    grid = cubes.grid_of(cube)
    size = _extents(args, "size", cube, grid)
    overlap = _extents(args, "overlap", cube, grid) if args.get_optional("overlap") is not None else {}
    height, width = cube.sizes[cubes.Y], cube.sizes[cubes.X]
    step_y, step_x = size.get(cubes.Y) or height, size.get(cubes.X) or width
    pad_y, pad_x = overlap.get(cubes.Y) or 0, overlap.get(cubes.X) or 0
    if not height or not width:
        return cube
    lead_y, lead_x = _grid_phase(cube, env, step_y, step_x)
    if lead_y or lead_x:
        # A fanned-out run's tile (with its halo) starts anywhere in the grid: the windows must be the
        # whole grid's, so the cube is extended to the window boundary before it, and cut back after.
        extended_grid = Grid(grid.crs, grid.transform @ Affine.translation(-lead_x, -lead_y),
                             width + lead_x, height + lead_y)
        extended = cube.astype(cubes.CUBE_DTYPE).pad({cubes.Y: (lead_y, 0), cubes.X: (lead_x, 0)},
                                                     constant_values=np.nan)
        extended = cubes.carry_metadata(
            extended.assign_coords({cubes.Y: extended_grid.y_coords(), cubes.X: extended_grid.x_coords()}), cube)
        result = _windows(extended, callback, context, env, (step_y, step_x), (pad_y, pad_x))
        return cubes.carry_metadata(result.isel({cubes.Y: slice(lead_y, None), cubes.X: slice(lead_x, None)}), cube)
    return _windows(cube, callback, context, env, (step_y, step_x), (pad_y, pad_x))


def _grid_phase(cube: xr.DataArray, env: EvalEnv, step_y: int, step_x: int) -> tuple[int, int]:
    """In a fanned-out run's tile: how far (rows, cols) the cube starts past the last window boundary of
    the whole grid (windows start at the grid's origin); elsewhere (0, 0)."""
    fanout = env.fanout
    if fanout is None or fanout.window is None:
        return 0, 0
    grid, window = cubes.grid_of(cube), fanout.window
    res_x, res_y = window.resolution
    if grid.crs != window.crs or not all(math.isclose(a, b, rel_tol=1e-9)
                                         for a, b in zip(grid.resolution, window.resolution, strict=True)):
        return 0, 0
    row_off, col_off = fanout.origin
    first_col = col_off + round((grid.transform.c - window.transform.c) / res_x)
    first_row = row_off + round((window.transform.f - grid.transform.f) / res_y)
    return first_row % step_y, first_col % step_x


def _windows(cube: xr.DataArray, callback: Any, context: Any, env: EvalEnv, steps: tuple[int, int],
             pads: tuple[int, int]) -> xr.DataArray:
    grid = cubes.grid_of(cube)
    height, width = cube.sizes[cubes.Y], cube.sizes[cubes.X]
    (step_y, step_x), (pad_y, pad_x) = steps, pads
    padded_grid = Grid(grid.crs, grid.transform @ Affine.translation(-pad_x, -pad_y),
                       width + 2 * pad_x, height + 2 * pad_y)
    padded = cube.astype(cubes.CUBE_DTYPE).pad({cubes.Y: (pad_y, pad_y), cubes.X: (pad_x, pad_x)},
                                               constant_values=np.nan)
    padded = padded.assign_coords({cubes.Y: padded_grid.y_coords(), cubes.X: padded_grid.x_coords()})
    result = cube.astype(cubes.CUBE_DTYPE).copy(deep=True)
    callback_env = env.for_array_dimension(None)
    for row in range(0, height, step_y):
        for col in range(0, width, step_x):
            rows = slice(row, min(row + step_y, height) + 2 * pad_y)
            cols = slice(col, min(col + step_x, width) + 2 * pad_x)
            window = padded.isel({cubes.Y: rows, cubes.X: cols})
            computed = callback(callback_env, data=window, context=context)
            _check_unchanged(computed, window)
            inner = computed.isel({cubes.Y: slice(pad_y, computed.sizes[cubes.Y] - pad_y),
                                   cubes.X: slice(pad_x, computed.sizes[cubes.X] - pad_x)})
            result[{cubes.Y: slice(row, row + inner.sizes[cubes.Y]), cubes.X: slice(col, col + inner.sizes[cubes.X])}] \
                = inner.transpose(*cube.dims).values
    return cubes.carry_metadata(result, cube)


def _extents(args: ProcessArgs, name: str, cube: xr.DataArray, grid: Grid) -> dict[str, int | None]:
    """`size` or `overlap` as pixels per dimension (None: all values)."""
    value = args.get_required(name, expected_type=list)
    extents: dict[str, int | None] = {}
    for item in value:
        if not isinstance(item, dict) or "dimension" not in item:
            raise args.invalid(name, "expected objects with 'dimension' and 'value'")
        dimension, amount, unit = item["dimension"], item.get("value"), item.get("unit")
        if dimension not in cube.dims:
            raise DimensionNotAvailableException(dimension=dimension)
        if amount is None:
            extents[dimension] = None
            continue
        if dimension not in (cubes.X, cubes.Y):
            raise args.invalid(name, f"only x and y can be split into neighbourhoods; give null (all values) "
                                     f"for '{dimension}'")
        if not isinstance(amount, Real) or isinstance(amount, bool) or amount < 0:
            raise args.invalid(name, f"the value for '{dimension}' must be a non-negative number of px or m")
        if unit not in (None, "px", "m"):
            raise args.invalid(name, f"unit '{unit}' is not one of: px, m")
        if unit != "px":  # m, or the unit of the CRS when not given (the spec)
            amount = amount / abs(grid.resolution[0 if dimension == cubes.X else 1])
        pixels = int(math.ceil(amount - 1e-9))
        if name == "size" and pixels < 1:
            raise args.invalid(name, f"the neighbourhood along '{dimension}' must be at least one pixel")
        extents[dimension] = pixels
    return extents


def _check_unchanged(computed: Any, window: xr.DataArray) -> None:
    if not isinstance(computed, xr.DataArray) or set(computed.dims) != set(window.dims):
        raise DataCubePropertiesImmutableException()
    for dimension in window.dims:
        if computed.sizes[dimension] != window.sizes[dimension]:
            raise DataCubePropertiesImmutableException()
        if dimension in window.indexes and dimension in computed.indexes and not np.array_equal(
                computed[dimension].values, window[dimension].values):
            raise DataCubePropertiesImmutableException()
