"""Dimension processes (openEO category "cubes"): add, drop, rename dimensions and their labels.

A cube's dimensions carry their openEO type by convention: `x`/`y` are spatial, `bands` is bands,
`t` and any dimension with datetime labels is temporal, everything else is "other". A dimension
whose type the name doesn't tell (`add_dimension(name="b", type="bands")`, a renamed `t`) records
it in the `dimension_types` attribute, which xarray keeps through the evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import Any

import numpy as np

from stratus_processing.deferred import pd, xr
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.errors import (
    DimensionExistsException,
    DimensionLabelCountMismatchException,
    DimensionNotAvailableException,
    LabelExistsException,
    LabelMismatchException,
    LabelNotAvailableException,
    LabelsNotEnumeratedException,
)
from stratus_processing.registry import ProcessArgs, process

DIMENSION_TYPES_ATTR = "dimension_types"
DIMENSION_TYPES = ("bands", "geometry", "spatial", "temporal", "other")


@process("add_dimension")
def add_dimension(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    name = args.get_required("name", expected_type=str)
    label = args.get_required("label", expected_type=(str, int, float))
    kind = args.get_enum("type", list(DIMENSION_TYPES), default="other")
    if name in cube.dims:
        raise DimensionExistsException(dimension=name)
    if kind == "temporal":
        try:
            label = datetime64(label)
        except (TypeError, ValueError):
            raise args.invalid("label", f"a temporal dimension needs a date or date-time label, got {label!r}") \
                from None
    added = cube.expand_dims({name: [label]})
    if name == cubes.BANDS:
        added = added.assign_coords({cubes.COMMON_NAME: (cubes.BANDS, np.array([""], dtype=object))})
    return with_dimension_type(added, name, kind)


@process("drop_dimension")
def drop_dimension(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    name = require_dimension(cube, args.get_required("name", expected_type=str))
    if cube.sizes[name] != 1:
        raise DimensionLabelCountMismatchException()
    dropped = with_dimension_type(cube.isel({name: 0}).drop_vars(coords_along(cube, name)), name, None)
    # Without `t` the cube keeps the time span its data stems from.
    return cubes.carry_metadata(dropped, cube) if name == cubes.T else dropped


@process("dimension_labels")
def dimension_labels(args: ProcessArgs, env: EvalEnv) -> list[Any]:
    cube = args.get_required("data")
    if not isinstance(cube, xr.DataArray):
        raise args.invalid("data", "expected a data cube")
    return labels_of(cube, require_dimension(cube, args.get_required("dimension", expected_type=str)))


@process("rename_dimension")
def rename_dimension(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    source = require_dimension(cube, args.get_required("source", expected_type=str))
    target = args.get_required("target", expected_type=str)
    if target == source:
        return cube
    if target in cube.dims or target in cube.coords:
        raise DimensionExistsException(dimension=target)
    kind = dimension_type(cube, source)
    renamed = cube.rename({source: target})
    renamed = with_dimension_type(renamed, source, None)
    return with_dimension_type(renamed, target, kind)


@process("rename_labels")
def rename_labels(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    dimension = require_dimension(cube, args.get_required("dimension", expected_type=str))
    target = args.get_required("target", expected_type=list)
    source = args.get_optional("source", [], expected_type=list)
    labels = list(cube[dimension].values)
    if not source:
        if not all(_is_integer(v) for v in labels):
            raise LabelsNotEnumeratedException()
        source = list(range(len(target)))
    if len(source) != len(target):
        raise LabelMismatchException()

    positions = [label_position(cube, dimension, s) for s in source]
    for wanted, position in zip(source, positions, strict=True):
        if position is None:
            raise LabelNotAvailableException(label=wanted)
    renamed = {position: new for position, new in zip(positions, target, strict=True)}
    kept = [label for i, label in enumerate(labels) if i not in renamed]
    for new in target:
        if any(_same_label(new, old) for old in kept):
            raise LabelExistsException(label=new)

    new_labels = [renamed.get(i, label) for i, label in enumerate(labels)]
    if np.issubdtype(cube[dimension].dtype, np.datetime64):
        # New labels that are instants keep the dimension temporal; anything else turns it into text.
        try:
            values = np.array([datetime64(v) if i in renamed else v for i, v in enumerate(new_labels)])
        except (TypeError, ValueError):
            values = np.array([_label_value(v) for v in new_labels], dtype=object)
    else:
        values = _label_array(new_labels)
    return cube.assign_coords({dimension: values})


# --- helpers shared by the cube processes ----------------------------------------------------------

def require_dimension(cube: xr.DataArray, name: str) -> str:
    if name not in cube.dims:
        raise DimensionNotAvailableException(dimension=name)
    return name


def coords_along(cube: xr.DataArray, dimension: str) -> list[str]:
    """Coordinates indexed by `dimension` (its labels and e.g. `common_name` along bands). Through the
    coordinates' variables: every tile asks this several times, and `coords.items()` builds a DataArray
    per coordinate."""
    return [str(name) for name, variable in cube.coords.variables.items() if dimension in variable.dims]


def dimension_type(cube: xr.DataArray, dimension: str) -> str:
    """The openEO type of a dimension: declared, or told by its name or its labels."""
    return cube.attrs.get(DIMENSION_TYPES_ATTR, {}).get(dimension) or _inferred_type(cube, dimension)


def dimensions_of_type(cube: xr.DataArray, kind: str) -> list[str]:
    return [str(d) for d in cube.dims if dimension_type(cube, str(d)) == kind]


def with_dimension_type(cube: xr.DataArray, dimension: str, kind: str | None) -> xr.DataArray:
    """Record (or with None forget) a dimension's type where its name and labels don't tell it."""
    declared = {d: k for d, k in cube.attrs.get(DIMENSION_TYPES_ATTR, {}).items() if d != dimension}
    if kind is not None and kind != _inferred_type(cube, dimension):
        declared[dimension] = kind
    result = cube.copy(deep=False)
    result.attrs = {key: value for key, value in cube.attrs.items() if key != DIMENSION_TYPES_ATTR}
    if declared:
        result.attrs[DIMENSION_TYPES_ATTR] = declared
    return result


def _inferred_type(cube: xr.DataArray, dimension: str) -> str:
    if dimension in (cubes.X, cubes.Y):
        return "spatial"
    if dimension == cubes.BANDS:
        return "bands"
    if dimension == cubes.T or (dimension in cube.coords and np.issubdtype(cube[dimension].dtype, np.datetime64)):
        return "temporal"
    return "other"


def labels_of(cube: xr.DataArray, dimension: str) -> list[Any]:
    """A dimension's labels as JSON values: instants as RFC 3339 strings, numbers as numbers."""
    values = cube[dimension].values
    if np.issubdtype(values.dtype, np.datetime64):
        return [cubes.isoformat_utc(v) for v in pd.DatetimeIndex(values)]
    return [_label_value(v) for v in values]


def label_position(cube: xr.DataArray, dimension: str, label: Any) -> int | None:
    """Index of `label` along `dimension`; temporal labels compare as instants."""
    values = cube[dimension].values
    if np.issubdtype(values.dtype, np.datetime64):
        try:
            wanted = datetime64(label)
        except (TypeError, ValueError):
            return None
        matches = np.flatnonzero(values.astype("datetime64[ns]") == wanted)
    else:
        matches = np.flatnonzero([_same_label(label, v) for v in values])
    return int(matches[0]) if matches.size else None


def datetime64(value: Any) -> np.datetime64:
    """An RFC 3339 date or date-time (or a datetime) as naive-UTC datetime64[ns]."""
    if isinstance(value, str):
        value = cubes.parse_utc(value)
    elif isinstance(value, np.datetime64):
        return value.astype("datetime64[ns]")
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return np.datetime64(stamp.to_datetime64(), "ns")


def _is_integer(value: Any) -> bool:
    return (isinstance(value, (int, np.integer)) and not isinstance(value, bool)) or (
        isinstance(value, (float, np.floating)) and float(value).is_integer())


def _same_label(a: Any, b: Any) -> bool:
    if isinstance(a, Real) and isinstance(b, Real) and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    return str(a) == str(b) and isinstance(a, Real) == isinstance(b, Real)


def _label_value(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _label_array(labels: Sequence[Any]) -> np.ndarray:
    values = [_label_value(v) for v in labels]
    if all(isinstance(v, str) for v in values):
        return np.array(values, dtype=object) if not values else np.array(values)
    if all(isinstance(v, Real) and not isinstance(v, bool) for v in values):
        return np.array(values)
    return np.array(values, dtype=object)
