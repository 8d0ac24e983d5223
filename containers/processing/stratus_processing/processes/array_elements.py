"""Array processes that edit, reorder, map or filter the elements of an array (openEO category
"arrays", with the proposals array_create_labeled, array_find_label, array_modify and cum*).

They follow the conventions of `processes.arrays` (read its docstring): plain arrays are lists (None as
no-data), labeled arrays 1-D DataArrays, and inside a callback over a cube dimension the whole cube is the
array; array results on cubes keep the dimension unlabeled and are padded with NaN at the end where the
length differs per pixel.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stratus.errors import OpenEOApiException

from stratus_processing.deferred import xr
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.errors import (
    ArrayElementNotAvailableException,
    ArrayNotLabeledException,
    LabelExistsException,
)
from stratus_processing.processes.arrays import (
    CubeArray,
    PlainArray,
    _check_no_label_conflict,
    _concat_along_cube,
    _equal,
    _json_type,
    _label_key,
    _python,
    array_argument,
    is_number,
    labeled,
)
from stratus_processing.registry import ProcessArgs, process


class ArrayLengthMismatchException(OpenEOApiException):
    status_code, code = 400, "ArrayLengthMismatch"
    message_template = "The number of values in the parameters `data` and `labels` don't match."


def _result(values: list[Any], array: PlainArray, labels: list[Any] | None = None) -> Any:
    """`values` as a labeled array when the source is labeled (with `labels`, default the source's)."""
    if array.labels is None:
        return values
    return labeled(values, array.labels if labels is None else labels, array.dimension or "labels")


# --- array_labels, array_find_label, array_create_labeled ----------------------------------------

@process("array_labels")
def array_labels(args: ProcessArgs, env: EvalEnv) -> list[Any]:
    """The labels, or the indices of an unlabeled array (the spec's "natural" labels)."""
    array = array_argument(args, env)
    if isinstance(array, CubeArray):
        if array.dimension not in array.data.indexes:
            return list(range(array.size))
        return [_python(v) for v in array.data[array.dimension].values]
    return list(array.labels) if array.labels is not None else list(range(len(array.values)))


@process("array_find_label")
def array_find_label(args: ProcessArgs, env: EvalEnv) -> int | None:
    array = array_argument(args, env)
    label = args.get_required("label", expected_type=(str, int, float))
    labels = array_labels(args, env) if isinstance(array, CubeArray) else array.labels
    if labels is None or (isinstance(array, CubeArray) and array.dimension not in array.data.indexes):
        return None
    positions = [i for i, candidate in enumerate(labels) if _equal(_label_key(candidate), label)]
    return positions[0] if positions else None


@process("array_create_labeled")
def array_create_labeled(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    data = args.get_required("data", expected_type=list)
    labels = args.get_required("labels", expected_type=list)
    if len(data) != len(labels):
        raise ArrayLengthMismatchException()
    if any(isinstance(v, xr.DataArray) for v in data):
        raise args.invalid("data", "a labeled array of data cube values is not supported; use apply_dimension "
                                   "with rename_labels")
    _check_unique_labels(labels)
    return labeled(list(data), list(labels), "labels")


def _check_unique_labels(labels: list[Any]) -> None:
    keys = [_label_key(label) for label in labels]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise LabelExistsException(label=key)


# --- array_append, array_modify, rearrange --------------------------------------------------------

@process("array_append")
def array_append(args: ProcessArgs, env: EvalEnv) -> Any:
    raw = args.get_required("data")
    value = args.get_required("value")
    label = args.get_optional("label", expected_type=(str, int, float))
    array = array_argument(args, env)
    if isinstance(array, CubeArray):
        if label is not None:
            raise args.invalid("label", "labels can only be appended to labeled arrays outside data cubes")
        return _concat_along_cube(args, env, raw, [value])
    if array.labels is None:
        if label is not None:
            raise ArrayNotLabeledException()
        if value is not None and array.values and not _same_kind(array.values, value):
            raise args.invalid("value", f"can't append {_json_type(value)} to this array")
        return [*array.values, value]
    new_label = len(array.values) if label is None else label
    if any(_equal(_label_key(existing), new_label) for existing in array.labels):
        raise LabelExistsException(label=new_label)
    return labeled([*array.values, value], [*array.labels, new_label], array.dimension or "labels")


def _same_kind(values: list[Any], value: Any) -> bool:
    """Whether `value` fits an array of `values` (numbers, booleans or strings; no-data fits any)."""
    present = [v for v in values if v is not None]
    if not present:
        return True
    kinds = {_kind(v) for v in present}
    return len(kinds) > 1 or _kind(value) in kinds


def _kind(value: Any) -> str:
    return "boolean" if isinstance(value, bool) else "number" if is_number(value) else type(value).__name__


@process("array_modify")
def array_modify(args: ProcessArgs, env: EvalEnv) -> Any:
    array = array_argument(args, env)
    values = array_argument(args, env, "values")
    index = args.get_required("index", expected_type=int)
    length = args.get_optional("length", 0, expected_type=int)
    if index < 0:
        raise args.invalid("index", "must be 0 or greater")
    if length < 0:
        raise args.invalid("length", "must be 0 or greater")
    if isinstance(array, CubeArray) or isinstance(values, CubeArray):
        raise args.invalid("data", "array_modify works on plain and labeled arrays, not on data cube values")
    if index > len(array.values):
        raise ArrayElementNotAvailableException()
    modified = array.values[:index] + list(values.values) + array.values[index + length:]
    keep_labels = (array.labels is not None or not array.values) and (values.labels is not None or not values.values)
    if not keep_labels or (array.labels is None and values.labels is None):
        return modified
    old, new = list(array.labels or []), list(values.labels or [])
    kept = old[:index] + old[index + length:]
    _check_no_label_conflict(kept, new)
    return labeled(modified, old[:index] + new + old[index + length:],
                   array.dimension or values.dimension or "labels")


@process("rearrange")
def rearrange(args: ProcessArgs, env: EvalEnv) -> Any:
    """The elements at the positions `order` gives, labels kept with their elements."""
    array = array_argument(args, env)
    order = args.get_required("order", expected_type=list)
    size = array.size if isinstance(array, CubeArray) else len(array.values)
    for position in order:
        if not (is_number(position) and float(position).is_integer()):
            raise args.invalid("order", f"expected integer positions, got {_json_type(position)}")
        if not 0 <= position < size:
            raise ArrayElementNotAvailableException()
    positions = [int(p) for p in order]
    if isinstance(array, CubeArray):
        return array.data.isel({array.dimension: positions})
    labels = None if array.labels is None else [array.labels[p] for p in positions]
    return _result([array.values[p] for p in positions], array, labels)


# --- order ----------------------------------------------------------------------------------------

@process("order")
def order(args: ProcessArgs, env: EvalEnv) -> Any:
    """The positions that sort the array (a stable sort: ties keep their order)."""
    array = array_argument(args, env)
    ascending = args.get_optional("asc", True, expected_type=bool)
    nodata = args.get_optional("nodata", expected_type=bool)  # None: drop, True: last, False: first
    if isinstance(array, CubeArray):
        return _order_cube(array, ascending, nodata)
    if all(v is None or is_number(v) for v in array.values):
        # NaN sorts after every number either way; ties keep their order (a stable sort)
        keys = {i: (bool(np.isnan(v)), v if ascending else -v) for i, v in enumerate(array.values) if v is not None}
        ordered = sorted(keys, key=keys.__getitem__)
    else:
        keys = _temporal_keys(args, array.values)
        ordered = sorted(keys, key=keys.__getitem__, reverse=not ascending)  # reverse keeps ties in order
    missing = [i for i, v in enumerate(array.values) if v is None]
    if nodata is None:
        return ordered
    return ordered + missing if nodata else missing + ordered


def _temporal_keys(args: ProcessArgs, values: list[Any]) -> dict[int, Any]:
    keys = {}
    for i, value in enumerate(values):
        if value is None:
            continue
        if not isinstance(value, str):
            raise args.invalid("data", "can only order an array of numbers or of temporal strings")
        try:
            keys[i] = cubes.parse_utc(value)
        except ValueError as exc:
            raise args.invalid("data", f"strings can only be ordered as dates or date-times: {exc}") from exc
    return keys


def _order_cube(array: CubeArray, ascending: bool, nodata: bool | None) -> xr.DataArray:
    data = array.data.astype(cubes.CUBE_DTYPE)
    missing = data.isnull()
    keys = data if ascending else -data
    order_missing = ~missing if nodata is False else missing
    axis = data.get_axis_num(array.dimension)
    positions = np.lexsort((np.broadcast_to(np.arange(array.size).reshape(
        [-1 if d == axis else 1 for d in range(data.ndim)]), data.shape), keys.values, order_missing.values),
        axis=axis) if array.size else np.zeros(data.shape, dtype=np.int64)
    result = data.copy(data=positions.astype(cubes.CUBE_DTYPE))
    if nodata is None:
        count = (~missing).sum(array.dimension)
        longest = int(count.max()) if array.size else 0
        result = result.isel({array.dimension: slice(0, longest)})
        within = xr.DataArray(np.arange(longest), dims=[array.dimension])
        result = result.where(within < count)
    return array.as_array_result(result)


# --- array_apply, array_filter --------------------------------------------------------------------

def _element_parameters(array: PlainArray) -> list[dict[str, Any]]:
    labels = array.labels if array.labels is not None else list(range(len(array.values)))
    return [{"x": value, "index": i, "label": label}
            for i, (value, label) in enumerate(zip(array.values, labels, strict=True))]


def _cube_parameters(array: CubeArray) -> dict[str, Any]:
    """x, index and label for all elements at once: index (and numeric labels) broadcast along the
    dimension."""
    index = xr.DataArray(np.arange(array.size, dtype=cubes.CUBE_DTYPE), dims=[array.dimension])
    if array.dimension in array.data.indexes:
        label = array.data[array.dimension].reset_coords(drop=True)
        label = label.drop_vars(array.dimension)
    else:
        label = index
    return {"x": array.data, "index": index, "label": label}


@process("array_apply")
def array_apply(args: ProcessArgs, env: EvalEnv) -> Any:
    array = array_argument(args, env)
    callback = args.get_callback("process")
    context = args.get_optional("context")
    element_env = env.for_array_dimension(None)
    if isinstance(array, CubeArray):
        result = callback(element_env, **_cube_parameters(array), context=context)
        return _broadcast_like(result, array)
    results = [_plain_value(callback(element_env, **parameters, context=context))
               for parameters in _element_parameters(array)]
    return _result(results, array)


def _broadcast_like(result: Any, array: CubeArray) -> xr.DataArray:
    if isinstance(result, bool):
        result = float(result)
    if result is None:
        result = np.nan
    if not isinstance(result, xr.DataArray):
        result = xr.full_like(array.data, result, dtype=cubes.CUBE_DTYPE)
    return result.broadcast_like(array.data).transpose(*array.data.dims)


def _plain_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return _python(value)
    return value


@process("array_filter")
def array_filter(args: ProcessArgs, env: EvalEnv) -> Any:
    array = array_argument(args, env)
    condition = args.get_callback("condition")
    context = args.get_optional("context")
    element_env = env.for_array_dimension(None)
    if isinstance(array, CubeArray):
        verdict = callback_verdict(condition(element_env, **_cube_parameters(array), context=context), array)
        return _compacted(array, verdict)
    kept = []
    for parameters in _element_parameters(array):
        verdict = _plain_value(condition(element_env, **parameters, context=context))
        if not isinstance(verdict, bool) and verdict is not None:
            raise args.invalid("condition", f"must return a boolean, returned {_json_type(verdict)}")
        if verdict is True:
            kept.append(parameters)
    values = [p["x"] for p in kept]
    return _result(values, array, [p["label"] for p in kept]) if array.labels is not None else values


def callback_verdict(verdict: Any, array: CubeArray) -> xr.DataArray:
    """A condition's result as a boolean array shaped like the cube (true only where it is 1.0/True)."""
    if not isinstance(verdict, xr.DataArray):
        return xr.full_like(array.data, verdict is True, dtype=bool)
    return (verdict == True).broadcast_like(array.data).transpose(*array.data.dims)  # noqa: E712


def _compacted(array: CubeArray, keep: xr.DataArray) -> xr.DataArray:
    """Per pixel the kept elements moved to the front (in order), padded with NaN to the longest."""
    data = array.data.astype(cubes.CUBE_DTYPE)
    axis = data.get_axis_num(array.dimension)
    if not array.size:
        return array.as_array_result(data)
    positions = np.argsort(~keep.values, axis=axis, kind="stable")
    values = np.take_along_axis(data.values, positions, axis=axis)
    count = keep.sum(array.dimension)
    longest = int(count.max())
    result = data.copy(data=values).isel({array.dimension: slice(0, longest)})
    within = xr.DataArray(np.arange(longest), dims=[array.dimension])
    return array.as_array_result(result.where(within < count))


# --- cumulative: cummax, cummin, cumproduct, cumsum -----------------------------------------------

_CUMULATIVE = {"cummax": np.fmax.accumulate, "cummin": np.fmin.accumulate,
               "cumproduct": np.nancumprod, "cumsum": np.nancumsum}


def _cumulative(process_id: str):
    accumulate = _CUMULATIVE[process_id]

    def run(args: ProcessArgs, env: EvalEnv) -> Any:
        array = array_argument(args, env)
        ignore_nodata = args.get_optional("ignore_nodata", True, expected_type=bool)
        if isinstance(array, CubeArray):
            data = array.data.astype(cubes.CUBE_DTYPE)
            axis = data.get_axis_num(array.dimension)
            return data.copy(data=cumulate(data.values, accumulate, axis, ignore_nodata))
        array.valid_numbers(args)
        values = np.array([np.nan if v is None else v for v in array.values], dtype=np.float64)
        result = cumulate(values, accumulate, 0, ignore_nodata)
        return _result([None if np.isnan(v) else float(v) for v in result], array)

    return run


def cumulate(values: np.ndarray, accumulate: Any, axis: int, ignore_nodata: bool) -> np.ndarray:
    """The running statistic along `axis`: no-data (NaN) stays no-data, and either is skipped
    (`ignore_nodata`) or makes every later value no-data."""
    missing = np.isnan(values)
    if values.shape[axis] == 0:
        return values.copy()
    result = accumulate(values, axis=axis)
    if ignore_nodata:
        return np.where(missing, np.nan, result)
    return np.where(np.logical_or.accumulate(missing, axis=axis), np.nan, result)


for _process_id in _CUMULATIVE:
    process(_process_id)(_cumulative(_process_id))
