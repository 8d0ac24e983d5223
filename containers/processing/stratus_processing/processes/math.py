"""Mathematical processes (openEO category "math"): on numbers, null and cubes alike, element-wise.

Every process takes Python numbers, `None` (openEO no-data) and `xarray.DataArray`s, because
callbacks run vectorised: in `apply` the `x` parameter is the whole cube, so `absolute(x)` is one
numpy call over all pixels. xarray broadcasts by dimension name, so inside a reducer
`subtract(B08, B04)` works on whole (t, y, x) arrays at once.

No-data: a `None` argument gives `None` (or, next to an array, an all-NaN array of its shape); in
arrays NaN is the no-data marker and propagates through every computation. IEEE 754 semantics
otherwise (`x/0` is ±inf, `ln(0)` is -inf, `sqrt(-1)` NaN), without warnings.

On plain numbers the processes whose result is an integer (`ceil`, `floor`, `int`, `sgn`) return a
Python `int` for finite results; arrays stay float64 (the cube convention, NaN for no-data).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from numbers import Real
from typing import Any

import numpy as np
from stratus.errors import OpenEOApiException

from stratus_processing.deferred import xr
from stratus_processing.cube import CUBE_DTYPE
from stratus_processing.env import EvalEnv
from stratus_processing.registry import ProcessArgs, process

Number = int | float
Operand = "Number | xr.DataArray | None"  # a string: xarray loads when a cube is first touched


class MinMaxSwappedException(OpenEOApiException):
    """The exception clip.json declares."""

    status_code, code = 400, "MinMaxSwapped"
    message_template = "The minimum value should be lower than or equal to the maximum value."


# --- arithmetic ---------------------------------------------------------------------------------

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


@process("mod")
def mod(args: ProcessArgs, env: EvalEnv) -> Any:
    return _binary(args, _floored_mod)


@process("power")
def power(args: ProcessArgs, env: EvalEnv) -> Any:
    # float_power: (-3.5)^5 and 5^-1 as floats, where integer numpy power would refuse negative exponents.
    return _binary(args, np.float_power, names=("base", "p"))


@process("absolute")
def absolute(args: ProcessArgs, env: EvalEnv) -> Any:
    return _unary(args, np.abs)


@process("sgn")
def sgn(args: ProcessArgs, env: EvalEnv) -> Any:
    return _unary(args, np.sign, integral=True)


@process("sqrt")
def sqrt(args: ProcessArgs, env: EvalEnv) -> Any:
    return _unary(args, np.sqrt)


# --- rounding -----------------------------------------------------------------------------------

@process("ceil")
def ceil(args: ProcessArgs, env: EvalEnv) -> Any:
    return _unary(args, np.ceil, integral=True)


@process("floor")
def floor(args: ProcessArgs, env: EvalEnv) -> Any:
    return _unary(args, np.floor, integral=True)


@process("int")
def int_(args: ProcessArgs, env: EvalEnv) -> Any:
    # Truncation towards zero (int(-3.5) is -3, unlike floor). The spec's tests make int(NaN) no-data.
    result = _unary(args, np.trunc, integral=True)
    return None if isinstance(result, float) and math.isnan(result) else result


@process("round")
def round_(args: ProcessArgs, env: EvalEnv) -> Any:
    x = _operand(args, "x")
    p = args.get_optional("p", 0, expected_type=int)
    if x is None:
        return None
    if isinstance(x, int) and p >= 0:
        return x
    # numpy rounds half to even at precision p (rint(x * 10^p) / 10^p), as the spec's examples
    # expect (0.35 -> 0.4, 0.25 -> 0.2, -2.5 -> -2, 1234.5 at p=-2 -> 1200).
    return x.round(p) if isinstance(x, xr.DataArray) else _plain(np.round(x, p))


# --- clipping and scaling -----------------------------------------------------------------------

@process("clip")
def clip(args: ProcessArgs, env: EvalEnv) -> Any:
    x = _operand(args, "x")
    low = args.get_required("min", expected_type=(int, float))
    high = args.get_required("max", expected_type=(int, float))
    if high < low:
        raise MinMaxSwappedException()
    if x is None:
        return None
    # np.clip propagates NaN bounds and NaN values (the spec's tests expect NaN for both).
    return x.clip(low, high) if isinstance(x, xr.DataArray) else _plain(np.clip(x, low, high))


@process("linear_scale_range")
def linear_scale_range(args: ProcessArgs, env: EvalEnv) -> Any:
    x = _operand(args, "x")
    input_min = args.get_required("inputMin", expected_type=(int, float))
    input_max = args.get_required("inputMax", expected_type=(int, float))
    output_min = args.get_optional("outputMin", 0, expected_type=(int, float))
    output_max = args.get_optional("outputMax", 1, expected_type=(int, float))
    if x is None:
        return None
    # The input range may be given the other way round (inputMin > inputMax): clip to its bounds
    # whatever their order, the formula then maps inputMin to outputMin either way.
    low, high = np.minimum(input_min, input_max), np.maximum(input_min, input_max)
    with _ieee():
        clipped = x.clip(low, high) if isinstance(x, xr.DataArray) else np.clip(float(x), low, high)
        result = (clipped - input_min) / np.float64(input_max - input_min) * (output_max - output_min) + output_min
    return _plain(result)


# --- constants ----------------------------------------------------------------------------------

@process("constant")
def constant(args: ProcessArgs, env: EvalEnv) -> Any:
    return args.get_required("x")


@process("e")
def e(args: ProcessArgs, env: EvalEnv) -> float:
    return math.e


@process("nan")
def nan(args: ProcessArgs, env: EvalEnv) -> float:
    return math.nan


@process("pi")
def pi(args: ProcessArgs, env: EvalEnv) -> float:
    return math.pi


# --- exponentials and logarithms ----------------------------------------------------------------

@process("exp")
def exp(args: ProcessArgs, env: EvalEnv) -> Any:
    return _unary(args, np.exp, name="p")


@process("ln")
def ln(args: ProcessArgs, env: EvalEnv) -> Any:
    return _unary(args, np.log)


@process("log")
def log(args: ProcessArgs, env: EvalEnv) -> Any:
    return _binary(args, _logarithm, names=("x", "base"))


def _logarithm(x: Any, base: Any) -> Any:
    # The exact functions for the common bases: log(1000, 10) is 3, not 2.9999999999999996.
    if isinstance(base, Real) and base == 10:
        return np.log10(x)
    if isinstance(base, Real) and base == 2:
        return np.log2(x)
    return np.log(x) / np.log(base)


# --- trigonometric and hyperbolic functions (radians) ---------------------------------------------

@process("cos")
def cos(args: ProcessArgs, env: EvalEnv) -> Any:
    return _unary(args, np.cos)


@process("sin")
def sin(args: ProcessArgs, env: EvalEnv) -> Any:
    return _unary(args, np.sin)


@process("tan")
def tan(args: ProcessArgs, env: EvalEnv) -> Any:
    return _unary(args, np.tan)


@process("arccos")
def arccos(args: ProcessArgs, env: EvalEnv) -> Any:
    return _unary(args, np.arccos)


@process("arcsin")
def arcsin(args: ProcessArgs, env: EvalEnv) -> Any:
    return _unary(args, np.arcsin)


@process("arctan")
def arctan(args: ProcessArgs, env: EvalEnv) -> Any:
    return _unary(args, np.arctan)


@process("cosh")
def cosh(args: ProcessArgs, env: EvalEnv) -> Any:
    return _unary(args, np.cosh)


@process("sinh")
def sinh(args: ProcessArgs, env: EvalEnv) -> Any:
    return _unary(args, np.sinh)


@process("tanh")
def tanh(args: ProcessArgs, env: EvalEnv) -> Any:
    return _unary(args, np.tanh)


@process("arcosh")
def arcosh(args: ProcessArgs, env: EvalEnv) -> Any:
    return _unary(args, np.arccosh)


@process("arsinh")
def arsinh(args: ProcessArgs, env: EvalEnv) -> Any:
    return _unary(args, np.arcsinh)


@process("artanh")
def artanh(args: ProcessArgs, env: EvalEnv) -> Any:
    return _unary(args, np.arctanh)


@process("arctan2")
def arctan2(args: ProcessArgs, env: EvalEnv) -> Any:
    return _binary(args, np.arctan2, names=("y", "x"))


# --- helpers ------------------------------------------------------------------------------------

def _unary(args: ProcessArgs, function: Callable[[Any], Any], *, name: str = "x", integral: bool = False) -> Any:
    x = _operand(args, name)
    if x is None:
        return None
    with _ieee():
        result = function(x)
    result = _plain(result)
    if integral and isinstance(result, float) and math.isfinite(result):
        return int(result)
    return result


def _binary(args: ProcessArgs, operation: Callable[[Any, Any], Any], *,
            names: tuple[str, str] = ("x", "y")) -> Any:
    first, second = _operand(args, names[0]), _operand(args, names[1])
    if first is None or second is None:  # openEO: no-data in, no-data out
        array = first if isinstance(first, xr.DataArray) else second
        return xr.full_like(array, np.nan, dtype=CUBE_DTYPE) if isinstance(array, xr.DataArray) else None
    with _ieee():
        return _plain(operation(first, second))


def _floored_mod(x: Any, y: Any) -> Any:
    """The remainder with the sign of the divisor (-27 mod 5 is 3, 3.14 mod -2 is -0.86), like
    Python's `%`; the spec's examples add: y = 0 behaves like x / 0, an infinite y leaves a finite x."""
    if not isinstance(x, xr.DataArray) and not isinstance(y, xr.DataArray):
        if y == 0:
            return np.divide(x, 0)
        if math.isinf(y) and math.isfinite(x):
            return x
        return x % y
    remainder = np.mod(x, y)
    remainder = xr.where(np.isinf(y) & np.isfinite(x), x, remainder, keep_attrs=True)
    return xr.where(y == 0, np.divide(x, 0), remainder, keep_attrs=True)


def _operand(args: ProcessArgs, name: str) -> Operand:
    value = args.get_required(name)
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, xr.DataArray) or (isinstance(value, Real) and not isinstance(value, bool)):
        return value
    raise args.invalid(name, f"expected a number, null or a data cube, got {type(value).__name__}")


def _plain(result: Any) -> Any:
    """numpy scalars as Python numbers (JSON-serialisable, comparable with `is None` checks)."""
    if isinstance(result, np.ndarray) and result.ndim == 0:
        result = result[()]
    return result.item() if isinstance(result, np.generic) else result


def _ieee() -> np.errstate:
    # The evaluator already silences these; processes called directly (tests) behave the same.
    return np.errstate(divide="ignore", invalid="ignore", over="ignore")
