"""Filters on dimension labels (openEO category "filter"): bands, time, labels by condition."""

from __future__ import annotations

from typing import Any

import numpy as np

from stratus_processing.deferred import pd, xr
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.errors import (
    BandFilterParameterMissingException,
    DimensionMissingException,
    DimensionNotAvailableException,
    TemporalExtentEmptyException,
)
from stratus_processing.processes.dimensions import (
    datetime64,
    dimensions_of_type,
    labels_of,
    require_dimension,
)
from stratus_processing.registry import ProcessArgs, process

# Centre wavelengths in micrometres of the STAC EO common band names (middle of the ranges the
# extension gives), for bands without an explicit `center_wavelength` coordinate.
COMMON_NAME_WAVELENGTHS = {
    "coastal": 0.425, "blue": 0.475, "green": 0.545, "yellow": 0.6, "red": 0.655, "pan": 0.6,
    "rededge": 0.745, "rededge071": 0.71, "rededge075": 0.745, "rededge078": 0.78,
    "nir": 0.875, "nir08": 0.825, "nir09": 0.95, "cirrus": 1.375, "swir16": 1.65, "swir22": 2.2,
    "lwir": 11.5, "lwir11": 11.0, "lwir12": 12.0,
}
CENTER_WAVELENGTH = "center_wavelength"


@process("filter_bands")
def filter_bands(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    bands = args.get_optional("bands", [], expected_type=list)
    wavelengths = args.get_optional("wavelengths", [], expected_type=list)
    if not bands and not wavelengths:
        raise BandFilterParameterMissingException()
    dimensions = dimensions_of_type(cube, "bands")
    if len(dimensions) != 1:
        raise DimensionMissingException()
    dimension = dimensions[0]

    names = [str(b) for b in cube[dimension].values]
    common = _coord_values(cube, dimension, cubes.COMMON_NAME)
    centres = _centre_wavelengths(cube, dimension, common)
    selected: list[int] = []

    def select(positions: list[int]) -> None:
        selected.extend(p for p in positions if p not in selected)

    for band in bands:
        if not isinstance(band, str):
            raise args.invalid("bands", f"expected band names, got {band!r}")
        # A band name wins over common names; a common name selects all its bands in cube order.
        select([names.index(band)] if band in names else [i for i, c in enumerate(common) if c == band])
    for interval in wavelengths:
        if (not isinstance(interval, list) or len(interval) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in interval)):
            raise args.invalid("wavelengths", f"expected [minimum, maximum] pairs in micrometres, got {interval!r}")
        low, high = interval
        select([i for i, c in enumerate(centres) if c is not None and low <= c <= high])
    return cube.isel({dimension: selected})


@process("filter_temporal")
def filter_temporal(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    start, end = temporal_interval(args, "extent")
    dimension = args.get_optional("dimension", expected_type=str)
    if dimension is not None:
        dimensions = [require_dimension(cube, dimension)]
    else:
        dimensions = dimensions_of_type(cube, "temporal")
        if not dimensions:
            raise DimensionNotAvailableException(message="The data cube has no temporal dimension.")
    for name in dimensions:
        labels = cube[name].values
        if not np.issubdtype(labels.dtype, np.datetime64):
            raise args.invalid("dimension", f"the labels of the dimension '{name}' are not dates or date-times")
        keep = np.ones(labels.shape, dtype=bool)
        if start is not None:
            keep &= labels >= start
        if end is not None:
            keep &= labels < end
        cube = cube.isel({name: np.flatnonzero(keep)})
    return cube


@process("filter_labels")
def filter_labels(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    condition = args.get_callback("condition")
    dimension = require_dimension(cube, args.get_required("dimension", expected_type=str))
    context = args.get_optional("context")
    # One call per label (labels are few, and the condition sees a plain value as the spec says).
    keep = []
    for position, label in enumerate(labels_of(cube, dimension)):
        verdict = condition(env.for_array_dimension(None), value=label, context=context)
        if isinstance(verdict, xr.DataArray) and verdict.ndim == 0:
            verdict = verdict.item()
        if verdict is not None and not isinstance(verdict, (bool, np.bool_)):
            raise args.invalid("condition", f"it must return true or false, got {type(verdict).__name__}")
        if verdict:
            keep.append(position)
    return cube.isel({dimension: keep})


def temporal_interval(args: ProcessArgs, name: str) -> tuple[np.datetime64 | None, np.datetime64 | None]:
    """A left-closed temporal interval [start, end) argument with at most one open end."""
    interval = args.get_required(name, expected_type=list)
    if len(interval) != 2:
        raise args.invalid(name, "expected exactly two elements: start and end")
    if interval[0] is None and interval[1] is None:
        raise args.invalid(name, "only one of start and end may be null")
    try:
        start, end = (None if v is None else datetime64(v) for v in interval)
    except (TypeError, ValueError):
        raise args.invalid(name, "instants must be RFC 3339 dates or date-times") from None
    if start is not None and end is not None and end <= start:
        raise TemporalExtentEmptyException()
    return start, end


def _coord_values(cube: xr.DataArray, dimension: str, coord: str) -> list[Any]:
    if coord in cube.coords and cube.coords[coord].dims == (dimension,):
        return [v if v != "" else None for v in cube.coords[coord].values.tolist()]
    return [None] * cube.sizes[dimension]


def _centre_wavelengths(cube: xr.DataArray, dimension: str, common: list[Any]) -> list[float | None]:
    explicit = _coord_values(cube, dimension, CENTER_WAVELENGTH)
    return [float(e) if e is not None and not pd.isna(e) else COMMON_NAME_WAVELENGTHS.get(str(c))
            for e, c in zip(explicit, common, strict=True)]

