"""Arithmetic (openEO category "math"): on numbers, null and cubes alike, element-wise.

xarray broadcasts by dimension name, so inside a vectorised callback `subtract(B08, B04)` works on
whole (t, y, x) arrays at once.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from numbers import Real
from typing import Any

import numpy as np
import xarray as xr

from stratus_processing.env import EvalEnv
from stratus_processing.registry import ProcessArgs, process


@process("add")
def add(args: ProcessArgs, env: EvalEnv) -> Any:
    return _binary(args, operator.add)


@process("subtract")
def subtract(args: ProcessArgs, env: EvalEnv) -> Any:
    return _binary(args, operator.sub)


@process("multiply")
def multiply(args: ProcessArgs, env: EvalEnv) -> Any:
    return _binary(args, operator.mul)


@process("divide")
def divide(args: ProcessArgs, env: EvalEnv) -> Any:
    # numpy division so x/0 gives ±inf (NaN for 0/0) like IEEE 754, instead of Python's ZeroDivisionError.
    return _binary(args, np.divide)


def _binary(args: ProcessArgs, operation: Callable[[Any, Any], Any]) -> Any:
    x, y = _operand(args, "x"), _operand(args, "y")
    if x is None or y is None:  # openEO: no-data in, no-data out
        return None
    result = operation(x, y)
    return result.item() if isinstance(result, np.generic) else result


def _operand(args: ProcessArgs, name: str) -> Any:
    value = args.get_required(name)
    if value is None or isinstance(value, xr.DataArray) or (isinstance(value, Real) and not isinstance(value, bool)):
        return value
    raise args.invalid(name, f"expected a number, null or a data cube, got {type(value).__name__}")
