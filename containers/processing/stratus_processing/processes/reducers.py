"""Reducers (openEO category "reducer"): many values to one.

In a callback over a cube dimension (`env.array_dimension`), `data` is the whole cube and the
reduction runs along that dimension, vectorised. A plain JSON array reduces with numpy; an array
built from cube pieces (e.g. `[array_element(data, 0), array_element(data, 1)]`) is stacked first.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np
import xarray as xr

from stratus_processing.env import EvalEnv
from stratus_processing.registry import ProcessArgs, process

_STACK_DIMENSION = "__array__"


@process("mean")
def mean(args: ProcessArgs, env: EvalEnv) -> Any:
    return _reduce(args, env, "mean")


@process("median")
def median(args: ProcessArgs, env: EvalEnv) -> Any:
    return _reduce(args, env, "median")


@process("min")
def min_(args: ProcessArgs, env: EvalEnv) -> Any:
    return _reduce(args, env, "min")


@process("max")
def max_(args: ProcessArgs, env: EvalEnv) -> Any:
    return _reduce(args, env, "max")


@process("sum")
def sum_(args: ProcessArgs, env: EvalEnv) -> Any:
    return _reduce(args, env, "sum")


_NUMPY = {"mean": np.mean, "median": np.median, "min": np.min, "max": np.max, "sum": np.sum}


def _reduce(args: ProcessArgs, env: EvalEnv, how: str) -> Any:
    data = args.get_required("data")
    ignore_nodata = args.get_optional("ignore_nodata", True, expected_type=bool)
    if isinstance(data, xr.DataArray):
        dimension = env.array_dimension
        if dimension is None or dimension not in data.dims:
            raise args.invalid("data", "a data cube can only be reduced inside a callback over one of its "
                                       "dimensions, e.g. the reducer of reduce_dimension")
        return _reduce_dataarray(data, dimension, how, ignore_nodata)
    if isinstance(data, list):
        if any(isinstance(v, xr.DataArray) for v in data):
            stacked = xr.concat(xr.broadcast(*[_as_dataarray(v) for v in data]), dim=_STACK_DIMENSION,
                                coords="minimal", compat="override")
            return _reduce_dataarray(stacked, _STACK_DIMENSION, how, ignore_nodata)
        return _reduce_numbers(args, data, how, ignore_nodata)
    raise args.invalid("data", f"expected an array, got {type(data).__name__}")


def _reduce_dataarray(data: xr.DataArray, dimension: str, how: str, ignore_nodata: bool) -> xr.DataArray:
    if how == "sum":
        # min_count=1: a pixel with no valid value is no-data, not 0 (openEO: "solely no-data ... returns no-data").
        return data.sum(dimension, skipna=ignore_nodata, min_count=1)
    return getattr(data, how)(dimension, skipna=ignore_nodata)


def _reduce_numbers(args: ProcessArgs, data: list[Any], how: str, ignore_nodata: bool) -> Any:
    for value in data:
        if value is not None and not (isinstance(value, Real) and not isinstance(value, bool)):
            raise args.invalid("data", f"expected an array of numbers, found {type(value).__name__}")
    values = [v for v in data if v is not None and not (isinstance(v, float) and np.isnan(v))]
    if len(values) < len(data) and not ignore_nodata:
        return None
    if not values:
        return None
    result = _NUMPY[how](np.asarray(values))
    return result.item() if isinstance(result, np.generic) else result


def _as_dataarray(value: Any) -> xr.DataArray:
    if isinstance(value, xr.DataArray):
        return value
    return xr.DataArray(np.nan if value is None else value)
