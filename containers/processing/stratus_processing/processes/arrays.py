"""Array processes (openEO category "arrays", plus `sort`) and how every process sees an array argument.

An openEO array reaches a process in one of three shapes (`array_argument` tells them apart):

- a plain JSON array: a Python `list`, `None` as no-data (NaN is a number there, not no-data);
- a labeled array outside any cube: a one-dimensional `xarray.DataArray`, its coordinate the labels,
  NaN as no-data; processes treat it as the list of its values (labels kept where the spec keeps them);
- a cube inside a callback over one of its dimensions (`env.array_dimension`): the whole cube, the array
  being that dimension, so a process computes every pixel at once; NaN is no-data. A list holding cube
  pieces (`[array_element(data, 0), mean(data)]`) is stacked into such a cube first.

Results on cubes (how `reduce_dimension` and `apply_dimension` consume them):

- one value per array (`mean`, `first`, `count`, `array_find`, ...): the cube without the dimension;
- an array (`sort`, `quantiles`, `extrema`, `array_create`, `array_concat`): the cube with the *same
  dimension name at the same position*, its length changed as the process says and **no coordinate
  along it** (an unlabeled openEO array: positions 0..n-1). The one exception is `array_concat` of two
  labeled arrays, which keeps both label sets (the spec). The consumer chooses the labels, e.g.
  `apply_dimension` keeps the source labels when the length is unchanged and numbers them otherwise.
  Per-pixel ragged results are padded with NaN at the end (`sort` dropping no-data keeps the longest
  pixel's length).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
from stratus.errors import OpenEOApiException

from stratus_processing.deferred import pd, xr
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.errors import (
    ArrayElementNotAvailableException,
    ArrayElementParameterConflictException,
    ArrayElementParameterMissingException,
    ArrayNotLabeledException,
)
from stratus_processing.processes.dimensions import coords_along
from stratus_processing.registry import ProcessArgs, process

# The name of the dimension a list of cube pieces is stacked along when no callback dimension is free.
STACK_DIMENSION = "__array__"


class ArrayLabelConflictException(OpenEOApiException):
    status_code, code = 400, "ArrayLabelConflict"
    message_template = "At least one label exists in both arrays and the conflict must be resolved before."


# --- how a process sees its array argument ------------------------------------------------------

@dataclass(frozen=True)
class PlainArray:
    """A JSON array (`None` as no-data), or the values of a labeled array outside any cube."""

    values: list[Any]
    labels: list[Any] | None = None  # a labeled array's labels
    dimension: str | None = None  # a labeled array's dimension name, to build labeled results

    def valid_numbers(self, args: ProcessArgs, name: str = "data") -> tuple[list[Any], bool]:
        """The non-null values (numbers only, else the argument is invalid) and whether nulls were dropped."""
        for value in self.values:
            if value is not None and not is_number(value):
                raise args.invalid(name, f"expected an array of numbers, found {_json_type(value)}")
        numbers = [v for v in self.values if v is not None]
        return numbers, len(numbers) < len(self.values)


@dataclass(frozen=True)
class CubeArray:
    """A cube whose `dimension` is the openEO array; processes compute along it for every pixel at once."""

    data: xr.DataArray
    dimension: str

    @property
    def size(self) -> int:
        return self.data.sizes[self.dimension]

    def coords_along(self) -> list[str]:
        return coords_along(self.data, self.dimension)

    def reduced(self, result: xr.DataArray) -> xr.DataArray:
        """A one-value-per-array result, without the coordinates that lived along the dimension."""
        return result.drop_vars(self.coords_along(), errors="ignore")

    def template(self, fill: float = np.nan) -> xr.DataArray:
        """The shape of a one-value-per-array result, filled with `fill`."""
        return self.reduced(xr.full_like(self.data.isel({self.dimension: 0}, drop=True)
                                         if self.size else self.data.sum(self.dimension),
                                         fill, dtype=cubes.CUBE_DTYPE))

    def as_array_result(self, values: xr.DataArray) -> xr.DataArray:
        """An array result (the dimension kept, any length): unlabeled, in the source's dimension order."""
        values = values.drop_vars([n for n, c in values.coords.items() if self.dimension in c.dims], errors="ignore")
        order = [d for d in self.data.dims if d in values.dims] + [d for d in values.dims if d not in self.data.dims]
        return values.transpose(*order)


def array_argument(args: ProcessArgs, env: EvalEnv, name: str = "data") -> PlainArray | CubeArray:
    return as_array(args, env, args.get_required(name), name)


def as_array(args: ProcessArgs, env: EvalEnv, value: Any, name: str) -> PlainArray | CubeArray:
    if isinstance(value, list):
        if any(isinstance(item, xr.DataArray) for item in value):
            dimension = stack_dimension(env, value)
            return CubeArray(stack(args, value, dimension, name), dimension)
        return PlainArray(value)
    if isinstance(value, xr.DataArray):
        if value.ndim == 1:
            dimension = str(value.dims[0])
            labels = [_python(v) for v in value[dimension].values] if dimension in value.indexes else None
            return PlainArray([_python(v) for v in value.values], labels, dimension)
        dimension = env.array_dimension_of(value)
        if dimension is None:
            raise args.invalid(name, "a data cube is an array only inside a callback over one of its dimensions, "
                                     "e.g. the reducer of reduce_dimension")
        return CubeArray(value, dimension)
    raise args.invalid(name, f"expected an array, got {_json_type(value)}")


def stack_dimension(env: EvalEnv, items: Sequence[Any]) -> str:
    """Cube pieces are stacked along the callback's dimension (so `apply_dimension` gets its dimension
    back), unless a piece still has that dimension."""
    dimension = env.array_dimension
    if dimension is None or any(isinstance(i, xr.DataArray) and dimension in i.dims for i in items):
        return STACK_DIMENSION
    return dimension


def stack(args: ProcessArgs, items: Sequence[Any], dimension: str, name: str) -> xr.DataArray:
    """Numbers, nulls and cube pieces as one cube along a new, unlabeled `dimension`."""
    pieces = []
    for item in items:
        if isinstance(item, xr.DataArray):
            # Scalar coordinates are leftovers of selecting the pieces (e.g. the band label of
            # array_element); only the grid reference belongs to the stacked values.
            pieces.append(item.drop_vars([n for n, c in item.coords.items()
                                          if dimension in c.dims or (c.ndim == 0 and n != cubes.SPATIAL_REF)]))
        elif item is None:
            pieces.append(xr.DataArray(np.nan))
        elif isinstance(item, (bool, Real)):
            pieces.append(xr.DataArray(float(item)))
        else:
            raise args.invalid(name, f"an array mixing data cube values with {_json_type(item)} is not supported")
    stacked = xr.concat(xr.broadcast(*pieces), dim=dimension, coords="minimal", compat="override")
    if set(stacked.dims) <= set(cubes.DIMENSION_ORDER):
        stacked = stacked.transpose(*[d for d in cubes.DIMENSION_ORDER if d in stacked.dims])
    return stacked


def is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def labeled(values: list[Any], labels: list[Any], dimension: str) -> xr.DataArray:
    """A labeled array outside any cube (numbers as float64 with NaN for null, else objects)."""
    if all(v is None or is_number(v) for v in values):
        data = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    else:
        data = np.empty(len(values), dtype=object)
        data[:] = values
    return xr.DataArray(data, dims=[dimension], coords={dimension: _label_array(labels)})


def _label_array(labels: list[Any]) -> np.ndarray:
    if labels and all(isinstance(v, str) for v in labels):
        return np.array(labels, dtype=object)
    if all(is_number(v) for v in labels):
        return np.asarray(labels)
    array = np.empty(len(labels), dtype=object)
    array[:] = labels
    return array


def _python(value: Any) -> Any:
    """A numpy element as the JSON value it stands for (NaN as no-data, as in cubes)."""
    if isinstance(value, np.datetime64):
        return cubes.isoformat_utc(pd.Timestamp(value).to_pydatetime()) if not np.isnat(value) else None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, xr.DataArray):
        return "a data cube"
    return {bool: "a boolean", str: "a string", list: "an array", dict: "an object"}.get(
        type(value), "a number" if is_number(value) else type(value).__name__)


# --- array_element ------------------------------------------------------------------------------

@process("array_element")
def array_element(args: ProcessArgs, env: EvalEnv) -> Any:
    data = args.get_required("data")
    index = args.get_optional("index", expected_type=int)
    label = args.get_optional("label", expected_type=(str, int, float))
    return_nodata = args.get_optional("return_nodata", False, expected_type=bool)
    if index is None and label is None:
        raise ArrayElementParameterMissingException()
    if index is not None and label is not None:
        raise ArrayElementParameterConflictException()

    if isinstance(data, xr.DataArray):
        dimension = env.array_dimension_of(data)
        if dimension is None:
            raise args.invalid("data", "a data cube is an array only inside a callback over one of its dimensions")
        if label is not None and dimension not in data.indexes:
            raise ArrayNotLabeledException()
        position = index if index is not None else _label_position(data, dimension, label)
        if position is None or not 0 <= position < data.sizes[dimension]:
            if return_nodata:
                return None if data.ndim == 1 else CubeArray(data, dimension).template()
            raise ArrayElementNotAvailableException()
        element = data.isel({dimension: position})
        return _python(element.values.item()) if data.ndim == 1 else element

    if isinstance(data, list):
        if label is not None:
            raise ArrayNotLabeledException()
        if 0 <= index < len(data):
            return data[index]
        if return_nodata:
            return None
        raise ArrayElementNotAvailableException()
    raise args.invalid("data", f"expected an array, got {_json_type(data)}")


def _label_position(data: xr.DataArray, dimension: str, label: Any) -> int | None:
    labels = data[dimension].values
    if dimension == cubes.T or np.issubdtype(labels.dtype, np.datetime64):
        # Temporal labels compare as instants: "2022-06-02" matches a label at midnight that day.
        try:
            wanted = np.datetime64(pd.Timestamp(cubes.parse_utc(str(label))).tz_localize(None), "ns")
        except ValueError:
            return None
        matches = np.flatnonzero(labels.astype("datetime64[ns]") == wanted)
    elif is_number(label) and labels.dtype.kind in "iuf":
        matches = np.flatnonzero(labels == label)
    else:
        matches = np.flatnonzero(np.asarray([str(v) for v in labels]) == str(label))
    return int(matches[0]) if matches.size else None


# --- array_create, array_concat -----------------------------------------------------------------

@process("array_create")
def array_create(args: ProcessArgs, env: EvalEnv) -> Any:
    data = args.get_optional("data", [])
    repeat = args.get_optional("repeat", 1, expected_type=int)
    if repeat < 1:
        raise args.invalid("repeat", "must be 1 or greater")
    array = as_array(args, env, _flattened(env, data), "data")
    if isinstance(array, PlainArray):
        return list(array.values) * repeat
    tiled = xr.concat([array.data] * repeat, dim=array.dimension, coords="minimal", compat="override")
    return array.as_array_result(tiled)


def _flattened(env: EvalEnv, data: Any) -> Any:
    """Cube pieces that are arrays along the callback's dimension (e.g. `quantiles(data, [0.05])`)
    contribute their elements: a cube holds no arrays of arrays."""
    dimension = env.array_dimension
    if not isinstance(data, list) or dimension is None or not any(
            isinstance(item, xr.DataArray) and dimension in item.dims for item in data):
        return data
    flat: list[Any] = []
    for item in data:
        if isinstance(item, xr.DataArray) and dimension in item.dims:
            flat += [item.isel({dimension: i}) for i in range(item.sizes[dimension])]
        else:
            flat.append(item)
    return flat


@process("array_concat")
def array_concat(args: ProcessArgs, env: EvalEnv) -> Any:
    raw1, raw2 = args.get_required("array1"), args.get_required("array2")
    if _holds_cube_values(raw1) or _holds_cube_values(raw2):
        return _concat_along_cube(args, env, raw1, raw2)
    first, second = as_array(args, env, raw1, "array1"), as_array(args, env, raw2, "array2")
    assert isinstance(first, PlainArray) and isinstance(second, PlainArray)
    values = first.values + second.values
    if first.labels is None or second.labels is None:
        return values  # labels are kept only if both arrays are labeled
    _check_no_label_conflict(first.labels, second.labels)
    return labeled(values, first.labels + second.labels, first.dimension or "labels")


def _holds_cube_values(value: Any) -> bool:
    if isinstance(value, xr.DataArray):
        return value.ndim > 1
    return isinstance(value, list) and any(isinstance(v, xr.DataArray) for v in value)


def _concat_along_cube(args: ProcessArgs, env: EvalEnv, raw1: Any, raw2: Any) -> xr.DataArray:
    items = {name: _items(args, env, raw, name) for name, raw in (("array1", raw1), ("array2", raw2))}
    cube_name = next((name for name, value in items.items() if isinstance(value, xr.DataArray)), None)
    if cube_name is not None:
        array = as_array(args, env, items[cube_name], cube_name)
        assert isinstance(array, CubeArray)
        dimension = array.dimension
    else:
        dimension = stack_dimension(env, [*items["array1"], *items["array2"]])
    sides = {name: value if isinstance(value, xr.DataArray) else stack(args, value, dimension, name) if value else None
             for name, value in items.items()}
    # An empty JSON array: the other side's shape with nothing along the dimension, unlabeled.
    a, b = (sides[name] if sides[name] is not None
            else sides[other].isel({dimension: slice(0, 0)}).drop_vars(dimension, errors="ignore")
            for name, other in (("array1", "array2"), ("array2", "array1")))
    if dimension in a.indexes and dimension in b.indexes:
        _check_no_label_conflict(list(a[dimension].values), list(b[dimension].values))
        keep = {n for n, c in a.coords.items() if dimension in c.dims and n in b.coords}
    else:
        keep = set()  # an unlabeled side makes the result unlabeled
    a, b = (side.drop_vars([n for n, c in side.coords.items() if dimension in c.dims and n not in keep])
            for side in (a, b))
    a, b = xr.broadcast(a, b, exclude=[dimension])
    joined = xr.concat([a, b], dim=dimension, coords="minimal", compat="override", join="exact")
    source = sides[cube_name] if cube_name is not None else a
    order = [d for d in source.dims if d in joined.dims]
    return joined.transpose(*order, *[d for d in joined.dims if d not in order])


def _items(args: ProcessArgs, env: EvalEnv, value: Any, name: str) -> xr.DataArray | list[Any]:
    """A cube as is; any other array as the list of its elements."""
    if isinstance(value, xr.DataArray) and value.ndim > 1:
        return value
    array = as_array(args, env, value, name) if not isinstance(value, list) else PlainArray(value)
    if not isinstance(array, PlainArray):
        raise args.invalid(name, f"expected an array, got {_json_type(value)}")
    return list(array.values)


def _check_no_label_conflict(labels1: list[Any], labels2: list[Any]) -> None:
    if set(map(_label_key, labels1)) & set(map(_label_key, labels2)):
        raise ArrayLabelConflictException()


def _label_key(label: Any) -> Any:
    return _python(label) if isinstance(label, np.generic) else label


# --- array_find ---------------------------------------------------------------------------------

@process("array_find")
def array_find(args: ProcessArgs, env: EvalEnv) -> Any:
    array = array_argument(args, env)
    value = args.get_required("value")
    reverse = args.get_optional("reverse", False, expected_type=bool)
    if isinstance(array, PlainArray):
        if value is None or isinstance(value, (list, dict, xr.DataArray)):
            return None
        positions = [i for i, element in enumerate(array.values) if _equal(element, value)]
        if not positions:
            return None
        return positions[-1] if reverse else positions[0]

    if value is None or isinstance(value, (str, list, dict)):
        return array.template()  # no-data, or never equal to a cube's numbers
    # Cube booleans are 1.0/0.0 (see `processes.logic`), so true finds 1.0.
    wanted = float(value) if isinstance(value, bool) else value
    data = array.data.isel({array.dimension: slice(None, None, -1)}) if reverse else array.data
    found = data == wanted
    position = found.argmax(array.dimension) if array.size else array.template(0).astype(int)
    if reverse:
        position = array.size - 1 - position
    return array.reduced(xr.where(found.any(array.dimension), position, np.nan).astype(cubes.CUBE_DTYPE))


@process("array_contains")
def array_contains(args: ProcessArgs, env: EvalEnv) -> Any:
    """As `eq` compares; null is never contained (e.g. a STAC property condition on a missing property)."""
    array = array_argument(args, env)
    value = args.get_required("value")
    if isinstance(array, PlainArray):
        if value is None or isinstance(value, (list, dict, xr.DataArray)):
            return False
        return any(_equal(element, value) for element in array.values)
    if value is None or isinstance(value, (str, list, dict)):
        return array.template(0.0)  # false everywhere: a cube's numbers are never null or a text
    wanted = float(value) if isinstance(value, bool) else value
    return array.reduced((array.data == wanted).any(array.dimension).astype(cubes.CUBE_DTYPE))


def _equal(element: Any, value: Any) -> bool:
    """`eq` on two non-null scalars, strictly typed: 1 == 1.0, but never "1" == 1 or true == 1."""
    if element is None or isinstance(element, (list, dict)):
        return False
    if isinstance(value, bool) or isinstance(element, bool):
        return isinstance(value, bool) and isinstance(element, bool) and value == element
    if is_number(value):
        return is_number(element) and element == value
    return type(element) is type(value) and element == value


# --- sort ---------------------------------------------------------------------------------------

@process("sort")
def sort(args: ProcessArgs, env: EvalEnv) -> Any:
    array = array_argument(args, env)
    ascending = args.get_optional("asc", True, expected_type=bool)
    nodata = args.get_optional("nodata", expected_type=bool)  # None: drop, True: last, False: first
    if isinstance(array, PlainArray):
        return _sort_values(args, array.values, ascending, nodata)

    data = array.data.astype(cubes.CUBE_DTYPE)
    missing = data.isnull()
    keys = data if ascending else -data
    # nodata=False puts no-data first; otherwise it sorts after every value (and is cut off for None).
    order_missing = ~missing if nodata is False else missing
    axis = data.get_axis_num(array.dimension)
    if array.size:
        order = np.lexsort((keys.values, order_missing.values), axis=axis)
        data = data.copy(data=np.take_along_axis(data.values, order, axis=axis))
    result = data
    if nodata is None:
        longest = int((~missing).sum(array.dimension).max()) if array.size else 0
        result = result.isel({array.dimension: slice(0, longest)})
    return array.as_array_result(result)


def _sort_values(args: ProcessArgs, values: list[Any], ascending: bool, nodata: bool | None) -> list[Any]:
    present = [v for v in values if v is not None]
    if all(is_number(v) for v in present):
        # NaN sorts after every number (numpy's convention), so it ends last when ascending.
        def key(v: Any) -> tuple[bool, float]:
            return (bool(np.isnan(v)), float(v))
    elif all(isinstance(v, str) for v in present):
        try:
            instants = {v: cubes.parse_utc(v) for v in present}
        except ValueError as exc:
            raise args.invalid("data", f"strings can only be sorted as dates or date-times: {exc}") from exc

        def key(v: Any) -> Any:
            return instants[v]
    else:
        raise args.invalid("data", "can only sort an array of numbers or of temporal strings")
    ordered = sorted(present, key=key, reverse=not ascending)
    gaps = [None] * (len(values) - len(present))
    if nodata is None:
        return ordered
    return ordered + gaps if nodata else gaps + ordered


# --- array_interpolate_linear -------------------------------------------------------------------

@process("array_interpolate_linear")
def array_interpolate_linear(args: ProcessArgs, env: EvalEnv) -> Any:
    """Fills NaN and no-data between two valid values along the labels (numbers or instants) or, for
    other labels, the positions; leading and trailing gaps stay as they are."""
    array = array_argument(args, env)
    if isinstance(array, CubeArray):
        data = array.data.astype(cubes.CUBE_DTYPE)
        axis = data.get_axis_num(array.dimension)
        coordinate = data[array.dimension].values if array.dimension in data.indexes else None
        positions = _interpolation_axis(coordinate, array.size)
        filled = interpolate_gaps(np.moveaxis(data.values, axis, -1), positions)
        return array.as_array_result(data.copy(data=np.moveaxis(filled, -1, axis)))

    for value in array.values:
        if value is not None and not is_number(value):
            raise args.invalid("data", f"expected an array of numbers, found {_json_type(value)}")
    values = np.array([np.nan if v is None else v for v in array.values], dtype=np.float64)
    labels = None if array.labels is None else np.asarray(
        [_instant(v) if isinstance(v, str) else v for v in array.labels])
    filled = interpolate_gaps(values, _interpolation_axis(labels, len(values)))
    result = [float(new) if (old is None or (isinstance(old, float) and np.isnan(old))) and not np.isnan(new)
              else old for old, new in zip(array.values, filled, strict=True)]
    if array.labels is None:
        return result
    return labeled(result, array.labels, array.dimension or "labels")


def interpolate_gaps(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """`values` (NaN as gaps) with every gap between two valid values along the last axis filled
    linearly over `positions`. Written as (1 - f) lo + f hi, so an infinite neighbour gives the
    infinite limit instead of inf - inf = NaN."""
    n = values.shape[-1]
    if n < 3:
        return values.copy()
    valid = ~np.isnan(values)
    index = np.arange(n)
    before = np.maximum.accumulate(np.where(valid, index, -1), axis=-1)
    after = np.flip(np.minimum.accumulate(np.flip(np.where(valid, index, n), axis=-1), axis=-1), axis=-1)
    gap = ~valid & (before >= 0) & (after < n)
    lo_index, hi_index = np.clip(before, 0, n - 1), np.clip(after, 0, n - 1)
    lo, hi = np.take_along_axis(values, lo_index, -1), np.take_along_axis(values, hi_index, -1)
    x, x_lo, x_hi = positions[index], positions[lo_index], positions[hi_index]
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = (x - x_lo) / (x_hi - x_lo)
        interpolated = (1 - fraction) * lo + fraction * hi
    return np.where(gap, interpolated, values)


def _interpolation_axis(labels: np.ndarray | None, size: int) -> np.ndarray:
    """The x of each element: numeric labels, instants (as ns), else the positions."""
    if labels is not None and len(labels) == size:
        if np.issubdtype(labels.dtype, np.datetime64):
            return labels.astype("datetime64[ns]").astype(np.int64).astype(np.float64)
        if labels.dtype.kind in "iuf":
            return labels.astype(np.float64)
    return np.arange(size, dtype=np.float64)


def _instant(label: str) -> Any:
    """A temporal label as datetime64 (else the text itself, which orders by position)."""
    try:
        return np.datetime64(pd.Timestamp(cubes.parse_utc(label)).tz_localize(None), "ns")
    except ValueError:
        return label
