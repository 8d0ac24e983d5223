"""Cube processes that change a cube's shape: create_data_cube, trim_cube, flatten_dimensions,
unflatten_dimension, reduce_spatial, aggregate_spatial_window and resample_cube_temporal."""

from __future__ import annotations

from typing import Any

import numpy as np
from stratus.errors import OpenEOApiException

from stratus_processing.deferred import pd, xr
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.errors import DimensionNotAvailableException
from stratus_processing.processes.arrays import _python
from stratus_processing.processes.dimensions import coords_along, dimension_type, with_dimension_type
from stratus_processing.processes.temporal import _one_per_cell, _template
from stratus_processing.registry import ProcessArgs, process

# The dimension the pixels of x and y are stacked along for a reducer (a list of values to it).
PIXELS = "__pixels__"


class TargetDimensionExistsException(OpenEOApiException):
    status_code, code = 400, "TargetDimensionExists"
    message_template = "A dimension with the specified target dimension name already exists."


class DimensionMismatchException(OpenEOApiException):
    status_code, code = 400, "DimensionMismatch"
    message_template = "The temporal dimensions for resampling don't match."


@process("create_data_cube")
def create_data_cube(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    """A cube without dimensions; add_dimension gives it some."""
    return xr.DataArray(np.float64(np.nan))


# --- trim_cube ------------------------------------------------------------------------------------

@process("trim_cube")
def trim_cube(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    """Drops the labels whose slice is all no-data: only at the edges of x and y (a grid stays
    regular), anywhere along the other dimensions."""
    data = args.get_required("data")
    if not isinstance(data, xr.DataArray) or data.ndim == 0:
        raise args.invalid("data", "expected a data cube")
    valid = data.notnull()
    keep: dict[str, Any] = {}
    for dimension in data.dims:
        others = [d for d in data.dims if d != dimension]
        has_data = valid.any(others).values if others else valid.values
        if dimension in (cubes.X, cubes.Y):
            found = np.flatnonzero(has_data)
            keep[dimension] = slice(int(found[0]), int(found[-1]) + 1) if found.size else slice(0, 0)
        else:
            keep[dimension] = np.flatnonzero(has_data)
    return data.isel(keep)


# --- flatten_dimensions, unflatten_dimension -----------------------------------------------------------

@process("flatten_dimensions")
def flatten_dimensions(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    data = _cube_like(args)
    names = args.get_required("dimensions", expected_type=list)
    target = args.get_required("target_dimension", expected_type=str)
    separator = args.get_optional("label_separator", "~", expected_type=str)
    for name in names:
        if name not in data.dims:
            raise DimensionNotAvailableException(dimension=name)
    if len(set(names)) != len(names) or not names:
        raise args.invalid("dimensions", "expected distinct dimension names")
    if target in data.dims and target not in names:
        raise TargetDimensionExistsException()
    position = min(data.dims.index(n) for n in names)
    rest = [d for d in data.dims if d not in names]
    order = rest[:position] + list(names) + rest[position:]
    data = data.transpose(*order)
    label_lists = [[_label_text(v) for v in _labels(data, n)] for n in names]
    labels = [separator.join(parts) for parts in _product(label_lists)]
    shape = [data.sizes[d] for d in rest[:position]] + [len(labels)] + [data.sizes[d] for d in rest[position:]]
    kept = {name: coord for name, coord in data.coords.items()
            if not set(coord.dims) & set(names) and name not in names}
    flat = xr.DataArray(data.values.reshape(shape), dims=[*rest[:position], target, *rest[position:]],
                        coords={**kept, target: np.array(labels, dtype=object)}, attrs=data.attrs)
    if not (cubes.X in flat.dims and cubes.Y in flat.dims):
        flat = flat.drop_vars(cubes.SPATIAL_REF, errors="ignore")
    for name in names:
        flat = with_dimension_type(flat, name, None)
    return with_dimension_type(flat, target, "other")


@process("unflatten_dimension")
def unflatten_dimension(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    data = _cube_like(args)
    dimension = args.get_required("dimension", expected_type=str)
    targets = args.get_required("target_dimensions", expected_type=list)
    separator = args.get_optional("label_separator", "~", expected_type=str)
    if dimension not in data.dims:
        raise DimensionNotAvailableException(dimension=dimension)
    if not targets or len(set(targets)) != len(targets):
        raise args.invalid("target_dimensions", "expected distinct dimension names")
    if any(t in data.dims and t != dimension for t in targets):
        raise TargetDimensionExistsException()
    parts = [str(_label_text(v)).split(separator) for v in _labels(data, dimension)]
    if any(len(p) != len(targets) for p in parts):
        raise args.invalid("label_separator", f"every label of '{dimension}' must split into {len(targets)} parts")
    levels = [list(dict.fromkeys(p[i] for p in parts)) for i in range(len(targets))]
    if len(set(map(tuple, parts))) != len(parts) or len(parts) != int(np.prod([len(l) for l in levels])):
        raise args.invalid("data", f"the labels of '{dimension}' don't form a complete grid of {targets}")
    position = data.dims.index(dimension)
    data = data.drop_vars(coords_along(data, dimension))
    # Labels in the order of the grid (the first target varying slowest), values taken by label.
    index = {tuple(p): i for i, p in enumerate(parts)}
    order = [index[tuple(combination)] for combination in _product(levels)]
    reordered = data.isel({dimension: order})
    shape = list(data.shape[:position]) + [len(l) for l in levels] + list(data.shape[position + 1:])
    dims = [*data.dims[:position], *targets, *data.dims[position + 1:]]
    coords = {name: coord for name, coord in data.coords.items() if dimension not in coord.dims}
    coords.update({t: np.array(l, dtype=object) for t, l in zip(targets, levels, strict=True)})
    result = xr.DataArray(reordered.values.reshape(shape), dims=dims, coords=coords, attrs=data.attrs)
    result = with_dimension_type(result, dimension, None)
    for target in targets:
        result = with_dimension_type(result, target, "other")
    return result


def _cube_like(args: ProcessArgs) -> xr.DataArray:
    data = args.get_required("data")
    if not isinstance(data, xr.DataArray) or data.ndim == 0:
        raise args.invalid("data", "expected a data cube")
    return data


def _labels(data: xr.DataArray, dimension: str) -> list[Any]:
    if dimension in data.indexes:
        return [_python(v) if not isinstance(v, np.datetime64) else _python(v) for v in data[dimension].values]
    return list(range(data.sizes[dimension]))


def _label_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _product(lists: list[list[Any]]) -> list[list[Any]]:
    combinations: list[list[Any]] = [[]]
    for values in lists:
        combinations = [[*c, v] for c in combinations for v in values]
    return combinations


# --- reduce_spatial, aggregate_spatial_window ----------------------------------------------------------

@process("reduce_spatial")
def reduce_spatial(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    """The reducer gets every pixel of a slice as one array (x and y stacked); x and y are dropped."""
    cube = args.get_cube("data")
    reducer = args.get_callback("reducer")
    context = args.get_optional("context")
    pixels = _pixels_along(cube.drop_vars(cubes.SPATIAL_REF), [cubes.Y, cubes.X])
    template = _template(pixels, PIXELS)
    result = _one_per_cell(reducer(env.for_array_dimension(PIXELS), data=pixels, context=context), template,
                           PIXELS, args)
    return result.drop_vars(cubes.SPATIAL_REF, errors="ignore")


def _pixels_along(data: xr.DataArray, spatial: list[str]) -> xr.DataArray:
    """`data` with the `spatial` dimensions replaced by one unlabeled PIXELS dimension at the end."""
    data = data.drop_vars([n for n in data.coords if set(data[n].dims) & set(spatial)])
    rest = [d for d in data.dims if d not in spatial]
    moved = data.transpose(*rest, *spatial)
    shape = [moved.sizes[d] for d in rest] + [int(np.prod([moved.sizes[d] for d in spatial]))]
    return xr.DataArray(moved.values.reshape(shape), dims=[*rest, PIXELS],
                        coords={n: c for n, c in moved.coords.items()}, attrs=data.attrs)


_ALIGNS = ["upper-left", "upper-right", "lower-left", "lower-right"]


@process("aggregate_spatial_window")
def aggregate_spatial_window(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    reducer = args.get_callback("reducer")
    size = args.get_required("size", expected_type=list)
    boundary = args.get_enum("boundary", ["pad", "trim"], default="pad")
    align = args.get_enum("align", _ALIGNS, default="upper-left")
    context = args.get_optional("context")
    if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size):
        raise args.invalid("size", "expected two window sizes in pixels (x, y), each 1 or more")
    window_x, window_y = size
    grid = cubes.grid_of(cube)
    data = cube.transpose(..., cubes.Y, cubes.X)
    # Pad or trim at the side opposite to the alignment corner.
    at_start_y, at_start_x = align.startswith("lower"), align.endswith("right")
    values, ys, xs = data.values, cube[cubes.Y].values, cube[cubes.X].values
    values, ys = _fit(values, ys, -2, window_y, boundary, at_start_y, -grid.resolution[1])
    values, xs = _fit(values, xs, -1, window_x, boundary, at_start_x, grid.resolution[0])
    rest = list(data.dims[:-2])
    ny, nx = len(ys) // window_y, len(xs) // window_x
    blocks = values.reshape(*values.shape[:-2], ny, window_y, nx, window_x)
    blocks = np.moveaxis(blocks, -3, -2).reshape(*values.shape[:-2], ny, nx, window_y * window_x)
    windows = xr.DataArray(blocks, dims=[*rest, cubes.Y, cubes.X, PIXELS],
                           coords={n: c for n, c in data.coords.items() if not set(c.dims) & {cubes.Y, cubes.X}})
    template = _template(windows, PIXELS)
    reduced = _one_per_cell(reducer(env.for_array_dimension(PIXELS), data=windows, context=context), template,
                            PIXELS, args)
    centres_y = ys.reshape(ny, window_y).mean(axis=1)
    centres_x = xs.reshape(nx, window_x).mean(axis=1)
    resolution = [grid.resolution[0] * window_x, grid.resolution[1] * window_y]
    spatial_ref = xr.DataArray(0, attrs={**cube[cubes.SPATIAL_REF].attrs, "resolution": resolution})
    result = reduced.assign_coords({cubes.Y: centres_y, cubes.X: centres_x, cubes.SPATIAL_REF: spatial_ref})
    return cubes.carry_metadata(result.transpose(*cube.dims), cube)


def _fit(values: np.ndarray, coords: np.ndarray, axis: int, window: int, boundary: str, at_start: bool,
         step: float) -> tuple[np.ndarray, np.ndarray]:
    """Values and pixel-centre coordinates padded with NaN (or trimmed) to a multiple of `window`,
    at the start of the axis when `at_start`, else at its end."""
    extra = len(coords) % window
    if not extra:
        return values, coords
    if boundary == "trim":
        keep = slice(extra, None) if at_start else slice(0, len(coords) - extra)
        index = [slice(None)] * values.ndim
        index[axis] = keep
        return values[tuple(index)], coords[keep]
    missing = window - extra
    pad = [(0, 0)] * values.ndim
    pad[axis] = (missing, 0) if at_start else (0, missing)
    padded = np.pad(values.astype(cubes.CUBE_DTYPE), pad, constant_values=np.nan)
    if at_start:
        coords = np.concatenate([coords[0] - step * np.arange(missing, 0, -1), coords])
    else:
        coords = np.concatenate([coords, coords[-1] + step * np.arange(1, missing + 1)])
    return padded, coords


# --- resample_cube_temporal ----------------------------------------------------------------------------

@process("resample_cube_temporal")
def resample_cube_temporal(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    data = args.get_required("data")
    target = args.get_required("target")
    for name, value in (("data", data), ("target", target)):
        if not isinstance(value, xr.DataArray) or value.ndim == 0:
            raise args.invalid(name, "expected a data cube")
    dimension = args.get_optional("dimension", expected_type=str)
    valid_within = args.get_optional("valid_within", expected_type=(int, float))
    if dimension is not None:
        if dimension not in data.dims or dimension not in target.dims:
            raise DimensionNotAvailableException(dimension=dimension)
        if dimension_type(data, dimension) != "temporal" or dimension_type(target, dimension) != "temporal":
            raise DimensionMismatchException()
        dimensions = [dimension]
    else:
        dimensions = [d for d in data.dims if d in target.dims and dimension_type(data, str(d)) == "temporal"
                      and dimension_type(target, str(d)) == "temporal"]
        if not dimensions:
            raise DimensionMismatchException()
    result = data
    for name in dimensions:
        result = _nearest_in_time(result, str(name), target[name].values.astype("datetime64[ns]"), valid_within)
    return result


def _nearest_in_time(data: xr.DataArray, dimension: str, targets: np.ndarray,
                     valid_within: float | None) -> xr.DataArray:
    """Per target instant the nearest source slice (ties: the earlier); with `valid_within` days, per
    pixel the nearest valid value within that distance, else no-data."""
    sources = data[dimension].values.astype("datetime64[ns]").astype(np.int64)
    along = coords_along(data, dimension)
    plain = data.drop_vars(along)
    slices = []
    for target in targets.astype(np.int64):
        distance = np.abs(sources - target)
        # Sorted by distance, the earlier instant first on a tie.
        candidates = sorted(range(len(sources)), key=lambda i: (distance[i], sources[i]))
        if valid_within is None:
            slices.append(plain.isel({dimension: candidates[0]}) if candidates else
                          _template(plain, dimension))
            continue
        limit = valid_within * 86_400 * 10**9
        chosen = _template(plain, dimension)
        for i in candidates:
            if distance[i] > limit:
                break
            piece = plain.isel({dimension: i})
            chosen = chosen.where(np.isfinite(chosen), piece.where(np.isfinite(piece)))
        slices.append(chosen)
    if not slices:
        return data.isel({dimension: slice(0, 0)})
    stacked = xr.concat(slices, dim=dimension, coords="minimal", compat="override")
    stacked = stacked.assign_coords({dimension: pd.DatetimeIndex(targets).values})
    return cubes.carry_metadata(stacked.transpose(*data.dims).astype(cubes.CUBE_DTYPE), data)
