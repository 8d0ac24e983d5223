"""Comparison processes (openEO category "comparison"): eq, neq, gt, gte, lt, lte, between.

Plain values follow the spec strictly: no-data in, no-data out; types are never coerced (`1` is not
`"1"`, `0` is not `false`; ordering anything but two numbers is `false`, except that `gte`/`lte` hold
for equal operands; so temporal strings are not compared as instants, use `date_difference`); NaN
compares as IEEE 754 says (never equal, never ordered).

On arrays results follow the boolean convention of `processes.logic` (float64 1.0/0.0, NaN for
no-data): a NaN pixel is no-data there, so it compares to no-data rather than to `false`. Since
cube booleans are stored as 1.0/0.0, `eq`/`neq` compare a plain `true`/`false` with an array as
1.0/0.0 (so `eq(mask, true)` works on a boolean cube); the ordering comparisons treat plain
booleans as the non-numbers they are (always `false`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from numbers import Real
from typing import Any

import numpy as np

from stratus_processing.deferred import xr
from stratus_processing.cube import CUBE_DTYPE
from stratus_processing.env import EvalEnv
from stratus_processing.processes.logic import boolean_array, first_array
from stratus_processing.registry import ProcessArgs, process

Comparable = "bool | int | float | str | xr.DataArray | None"  # a string: xarray is deferred


@process("eq")
def eq(args: ProcessArgs, env: EvalEnv) -> Any:
    return _equality(args, negate=False)


@process("neq")
def neq(args: ProcessArgs, env: EvalEnv) -> Any:
    return _equality(args, negate=True)


@process("gt")
def gt(args: ProcessArgs, env: EvalEnv) -> Any:
    return _ordering(args, operator.gt, inclusive=False)


@process("gte")
def gte(args: ProcessArgs, env: EvalEnv) -> Any:
    return _ordering(args, operator.ge, inclusive=True)


@process("lt")
def lt(args: ProcessArgs, env: EvalEnv) -> Any:
    return _ordering(args, operator.lt, inclusive=False)


@process("lte")
def lte(args: ProcessArgs, env: EvalEnv) -> Any:
    return _ordering(args, operator.le, inclusive=True)


@process("between")
def between(args: ProcessArgs, env: EvalEnv) -> Any:
    x = _plain(args.get_required("x"))
    low = args.get_required("min", expected_type=(int, float))
    high = args.get_required("max", expected_type=(int, float))
    below_max = operator.lt if args.get_optional("exclude_max", False, expected_type=bool) else operator.le
    if not isinstance(x, xr.DataArray):
        if x is None:
            return None
        # Swapped bounds are always false, as is anything but a number (strings, booleans, arrays).
        return _is_number(x) and low <= high and low <= x and below_max(x, high)
    values = _numeric_array(x)
    nodata = x.isnull()
    if values is None or not low <= high:
        return boolean_array(xr.zeros_like(nodata), nodata, like=x)
    return boolean_array((values >= low) & below_max(values, high), nodata, like=x)


# --- helpers ------------------------------------------------------------------------------------

def _equality(args: ProcessArgs, *, negate: bool) -> Any:
    x, y = _comparable(args, "x"), _comparable(args, "y")
    delta = args.get_optional("delta", expected_type=(int, float))
    if delta is not None and not delta > 0:
        raise args.invalid("delta", "must be greater than 0")
    case_sensitive = args.get_optional("case_sensitive", True, expected_type=bool)
    like = first_array(x, y)
    if like is None:
        if x is None or y is None:
            return None
        return _equal_values(x, y, delta, case_sensitive) != negate
    if x is None or y is None:
        return xr.full_like(like, np.nan, dtype=CUBE_DTYPE)
    equal, nodata = _equal_arrays(_as_array(x), _as_array(y), delta, case_sensitive)
    return boolean_array(~equal if negate else equal, nodata, like=like)


def _equal_arrays(a: xr.DataArray, b: xr.DataArray, delta: float | None,
                  case_sensitive: bool) -> tuple[xr.DataArray, xr.DataArray]:
    """Where `eq` holds, and where an operand is no-data."""
    nodata = a.isnull() | b.isnull()
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        equal = a == b
        if delta is not None:
            equal = equal | (abs(a - b) <= delta)
    elif _is_text(a) and _is_text(b):
        equal = a == b if case_sensitive else a.str.casefold() == b.str.casefold()
    else:  # numbers against strings (or other types): never equal
        equal = xr.zeros_like(nodata)
    return equal, nodata


def _equal_values(x: Any, y: Any, delta: float | None, case_sensitive: bool) -> bool:
    if _kind(x) != _kind(y):
        return False
    if isinstance(x, str) and not case_sensitive:
        return x.casefold() == y.casefold()
    if delta is not None and _is_number(x):
        return x == y or abs(x - y) <= delta
    return x == y


def _ordering(args: ProcessArgs, compare: Callable[[Any, Any], Any], *, inclusive: bool) -> Any:
    """gt/gte/lt/lte: numbers compare; anything else is false, except that `gte`/`lte` (`inclusive`)
    hold for operands that are equal (see `eq`), e.g. two equal strings."""
    x, y = _comparable(args, "x"), _comparable(args, "y")
    like = first_array(x, y)
    if like is None:
        if x is None or y is None:
            return None
        if _is_number(x) and _is_number(y):
            return compare(x, y)
        return inclusive and _equal_values(x, y, None, True)
    if x is None or y is None:
        return xr.full_like(like, np.nan, dtype=CUBE_DTYPE)
    a, b = _numeric_array(x), _numeric_array(y)
    if a is None or b is None:
        equal, nodata = _equal_arrays(_as_array(x), _as_array(y), None, True)
        return boolean_array(equal if inclusive else xr.zeros_like(nodata), nodata, like=like)
    return boolean_array(compare(a, b), a.isnull() | b.isnull(), like=like)


def _comparable(args: ProcessArgs, name: str) -> Comparable:
    value = _plain(args.get_required(name))
    if value is None or isinstance(value, bool | Real | str | xr.DataArray):
        return value
    raise args.invalid(name, f"expected a number, boolean, string, null or a data cube, got {type(value).__name__}")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, Real):
        return "number"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _is_text(array: xr.DataArray) -> bool:
    return array.dtype.kind in "USO"


def _as_array(value: Any) -> xr.DataArray:
    """An operand of `eq`/`neq` next to an array: numbers and booleans (as 1.0/0.0, the cube
    convention) as float64, strings as they are; plain values as 0-dimensional arrays."""
    if isinstance(value, xr.DataArray):
        return value.astype(CUBE_DTYPE) if value.dtype.kind in "biu" else value
    if isinstance(value, bool | Real):
        return xr.DataArray(float(value))
    return xr.DataArray(value)


def _numeric_array(value: Any) -> xr.DataArray | None:
    """An operand of an ordering comparison as a float64 array, or None if it isn't numeric
    (booleans, strings, datetimes)."""
    if isinstance(value, xr.DataArray):
        return value.astype(CUBE_DTYPE) if value.dtype.kind in "iuf" else None
    if _is_number(value):
        return xr.DataArray(float(value))
    return None


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
