"""`apply_polygon`: a process applied to the part of the cube inside each polygon.

Each polygon's sub-cube is the smallest grid window holding its pixels, the pixels whose centre is outside the
polygon set to `mask_value` (no-data by default); the process must return a cube of the same shape, whose
pixels inside the polygon are written back. Pixels outside every polygon are no-data in the result.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stratus.errors import OpenEOApiException

from stratus_processing.deferred import xr
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.geometry import PixelWindow, pixel_window
from stratus_processing.processes.spatial import geometries_argument
from stratus_processing.registry import ProcessArgs, process


class GeometriesOverlapException(OpenEOApiException):
    status_code, code = 400, "GeometriesOverlap"
    message_template = "Geometries are not allowed to overlap."


@process("apply_polygon")
def apply_polygon(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    features = geometries_argument(args, "geometries")
    function = args.get_callback("process")
    mask_value = args.get_optional("mask_value")
    context = args.get_optional("context")
    if isinstance(mask_value, str):
        raise args.invalid("mask_value", "a text can't replace pixels of a numeric cube")
    fill = np.nan if mask_value is None else float(mask_value)
    grid = cubes.grid_of(cube)
    polygons = features.to_crs(grid.crs).geometries
    if any(g is not None and g.geom_type not in ("Polygon", "MultiPolygon") for g in polygons):
        raise args.invalid("geometries", "only Polygon and MultiPolygon geometries are supported")
    data = cube.astype(cubes.CUBE_DTYPE)
    result = xr.full_like(data, np.nan)
    covered = np.zeros(grid.shape, dtype=bool)
    for geometry in polygons:
        window = pixel_window(geometry, grid)
        if window is None:
            continue
        rows, cols, window_mask = _smallest_window(window)
        inside = np.zeros(grid.shape, dtype=bool)
        inside[rows, cols] = window_mask
        if (covered & inside).any():
            raise GeometriesOverlapException()
        covered |= inside
        region = {cubes.Y: rows, cubes.X: cols}
        mask = xr.DataArray(window_mask, dims=(cubes.Y, cubes.X))
        sub = data.isel(region).where(mask, fill)
        processed = function(env.for_array_dimension(None), data=sub, context=context)
        result[region] = _same_shape(args, processed, sub).where(mask, result.isel(region))
    return cubes.carry_metadata(result, cube)


def _smallest_window(window: PixelWindow) -> tuple[slice, slice, np.ndarray]:
    """The window cut to the rows and columns with covered pixels (pixel_window keeps a margin)."""
    rows, cols = np.flatnonzero(window.mask.any(axis=1)), np.flatnonzero(window.mask.any(axis=0))
    mask = window.mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return (slice(window.rows.start + rows[0], window.rows.start + rows[-1] + 1),
            slice(window.cols.start + cols[0], window.cols.start + cols[-1] + 1), mask)


def _same_shape(args: ProcessArgs, processed: Any, sub: xr.DataArray) -> xr.DataArray:
    if not isinstance(processed, xr.DataArray):
        raise args.invalid("process", "it must return a data cube")
    if set(processed.dims) != set(sub.dims) or any(processed.sizes[d] != sub.sizes[d] for d in sub.dims):
        raise args.invalid("process", f"it must return a cube shaped like its input {dict(sub.sizes)}, "
                                      f"got {dict(processed.sizes)}")
    return processed.transpose(*sub.dims).astype(cubes.CUBE_DTYPE)
