"""Statistics returning arrays (openEO category "math > statistics"): `extrema` and `quantiles`.

On a plain array they return a list; on a cube they return the cube with the array dimension kept
in place and resized (2 for extrema, one per probability for quantiles), unlabeled, as
`arrays` describes for array results.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stratus.errors import OpenEOApiException

from stratus_processing.deferred import xr
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.processes.arrays import CubeArray, array_argument, is_number
from stratus_processing.processes.reducers import python_number, quiet_numpy
from stratus_processing.registry import ProcessArgs, process


class QuantilesParameterMissingException(OpenEOApiException):
    status_code, code = 400, "QuantilesParameterMissing"
    message_template = "The process `quantiles` requires either the `probabilities` or `q` parameter to be set."


class QuantilesParameterConflictException(OpenEOApiException):
    status_code, code = 400, "QuantilesParameterConflict"
    message_template = (
        "The process `quantiles` only allows that either the `probabilities` or the `q` parameter is set.")


class AscendingProbabilitiesRequiredException(OpenEOApiException):
    status_code, code = 400, "AscendingProbabilitiesRequired"
    message_template = "The values passed for parameter `probabilities` must be sorted in ascending order."


@process("extrema")
def extrema(args: ProcessArgs, env: EvalEnv) -> Any:
    array = array_argument(args, env)
    ignore_nodata = args.get_optional("ignore_nodata", True, expected_type=bool)
    if isinstance(array, CubeArray):
        data = array.data.astype(cubes.CUBE_DTYPE)
        with quiet_numpy():
            bounds = [data.min(array.dimension, skipna=ignore_nodata), data.max(array.dimension, skipna=ignore_nodata)]
        return array.as_array_result(xr.concat([array.reduced(b) for b in bounds], dim=array.dimension))
    numbers, dropped = array.valid_numbers(args)
    if (dropped and not ignore_nodata) or not numbers:
        return [None, None]
    values = np.asarray(numbers)
    return [python_number(np.min(values)), python_number(np.max(values))]


@process("quantiles")
def quantiles(args: ProcessArgs, env: EvalEnv) -> Any:
    array = array_argument(args, env)
    probabilities = _probabilities(args)
    ignore_nodata = args.get_optional("ignore_nodata", True, expected_type=bool)
    if isinstance(array, CubeArray):
        computed = xr.apply_ufunc(
            _quantiles_along_last_axis, array.data.astype(cubes.CUBE_DTYPE),
            kwargs={"probabilities": probabilities, "ignore_nodata": ignore_nodata},
            input_core_dims=[[array.dimension]], output_core_dims=[[array.dimension]],
            exclude_dims={array.dimension})
        return array.as_array_result(computed)

    numbers, dropped = array.valid_numbers(args)
    if (dropped and not ignore_nodata) or not numbers:
        return [None] * len(probabilities)
    values = np.asarray(numbers, dtype=np.float64)
    if np.isnan(values).any():
        return [float("nan")] * len(probabilities)  # NaN is a number in a plain array, and it propagates
    return [float(v) for v in _quantiles_along_last_axis(values, probabilities=probabilities, ignore_nodata=True)]


def _probabilities(args: ProcessArgs) -> list[float]:
    """The probabilities to compute: the given list, or k/q for k = 1..q-1 from an integer (either in
    `probabilities` or in the deprecated `q`)."""
    given = args.get_optional("probabilities", expected_type=(list, int))
    q = args.get_optional("q", expected_type=int)
    if given is None and q is None:
        raise QuantilesParameterMissingException()
    if given is not None and q is not None:
        raise QuantilesParameterConflictException()
    name, intervals = ("q", q) if q is not None else ("probabilities", given)
    if isinstance(intervals, int):
        if intervals < 2:
            raise args.invalid(name, "the number of intervals must be 2 or greater")
        return [k / intervals for k in range(1, intervals)]
    if not all(is_number(p) and 0 <= p <= 1 for p in intervals):
        raise args.invalid(name, "probabilities must be numbers between 0 and 1")
    if any(b <= a for a, b in zip(intervals, intervals[1:], strict=False)):
        raise AscendingProbabilitiesRequiredException()
    return [float(p) for p in intervals]


def _quantiles_along_last_axis(values: np.ndarray, *, probabilities: list[float], ignore_nodata: bool) -> np.ndarray:
    """Sample quantiles of type 7 (Hyndman & Fan; numpy's "linear") along the last axis, NaN as no-data:
    with `n` valid values, quantile p lies at position h = (n - 1) p of the sorted values, linearly
    interpolated. Written as (1 - f) lo + f hi so that infinite values give the infinite limit instead
    of inf - inf = NaN."""
    p = np.asarray(probabilities, dtype=np.float64)
    shape = values.shape[:-1] + (p.size,)
    if values.shape[-1] == 0:
        return np.full(shape, np.nan)
    ordered = np.sort(values, axis=-1)  # NaN last
    valid = np.sum(~np.isnan(values), axis=-1, keepdims=True)
    h = (valid - 1) * p
    below = np.floor(h)
    fraction = h - below
    last = values.shape[-1] - 1
    low = np.take_along_axis(ordered, np.clip(below, 0, last).astype(np.intp), axis=-1)
    high = np.take_along_axis(ordered, np.clip(below + 1, 0, last).astype(np.intp), axis=-1)
    with np.errstate(invalid="ignore"):
        result = np.where(fraction == 0, low, (1 - fraction) * low + fraction * high)
    undefined = valid == 0
    if not ignore_nodata:
        undefined = undefined | (valid < values.shape[-1])
    return np.where(undefined, np.nan, result)
