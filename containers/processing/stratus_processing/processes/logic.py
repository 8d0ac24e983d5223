"""Logical processes (openEO category "logic"): three-valued logic, `if` and the `is_*` checks.

How booleans and no-data coexist (used by these processes and by `comparison`):

- Plain values follow openEO: `True`, `False` and `None` (no-data).
- In arrays (cubes, or cube slices inside a callback) a boolean is stored like any cube value, as
  float64: 1.0 is true, 0.0 is false and NaN is no-data. So a comparison result is a cube that can be
  saved, used as a mask, summed (`sum(gt(x, 0))` counts) or fed back into arithmetic, and
  `and`/`or`/`not` keep no-data per pixel with the spec's truth tables.
- Arrays given as booleans are read leniently: a bool-dtype array has no no-data; a numeric array is
  true where non-zero, false where zero and no-data where NaN.
- A scalar next to an array broadcasts: `None` is no-data everywhere, `True`/`False` are 1.0/0.0.
- The `is_*` checks never return no-data: in arrays they are 1.0/0.0 only. Cubes mark no-data with
  NaN, so on arrays `is_nodata` and `is_nan` both test for NaN and `is_valid` for finite values.
- `if` picks per pixel with `xr.where`: true picks `accept`, false and no-data pick `reject`
  (default no-data), as the spec says for a null `value`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from stratus_processing.deferred import xr
from stratus_processing.cube import CUBE_DTYPE
from stratus_processing.env import EvalEnv
from stratus_processing.registry import ProcessArgs, process

TRUE, FALSE = 1.0, 0.0

Truth = bool | None  # a plain openEO boolean


# --- the convention, for this module and `comparison` --------------------------------------------

def boolean_array(condition: xr.DataArray, nodata: xr.DataArray | None = None, *,
                  like: Any = None) -> xr.DataArray:
    """A boolean result on arrays: 1.0 where `condition`, 0.0 elsewhere, NaN where `nodata`; the
    attributes of `like` (the array the result derives from) survive whatever lost them."""
    result = condition.astype(CUBE_DTYPE)
    if nodata is not None:
        result = result.where(~nodata)
    if isinstance(like, xr.DataArray) and like.attrs and not result.attrs:
        result.attrs = dict(like.attrs)
    return result


def truth_values(value: xr.DataArray | bool | None) -> xr.DataArray:
    """A boolean operand as an array of 1.0 (true), 0.0 (false) and NaN (no-data); a plain value
    becomes a 0-dimensional array that broadcasts against any cube."""
    if value is None:
        return xr.DataArray(np.nan)
    if isinstance(value, bool):
        return xr.DataArray(TRUE if value else FALSE)
    if value.dtype == bool:
        return value.astype(CUBE_DTYPE)
    return boolean_array(value != 0, value.isnull())


def first_array(*values: Any) -> xr.DataArray | None:
    return next((v for v in values if isinstance(v, xr.DataArray)), None)


# --- processes ----------------------------------------------------------------------------------

@process("not")
def not_(args: ProcessArgs, env: EvalEnv) -> Any:
    x = _boolean(args, "x")
    if not isinstance(x, xr.DataArray):
        return None if x is None else not x
    values = truth_values(x)
    return boolean_array(values == FALSE, values.isnull(), like=x)


@process("and")
def and_(args: ProcessArgs, env: EvalEnv) -> Any:
    x, y = _boolean(args, "x"), _boolean(args, "y")
    if first_array(x, y) is None:
        if x is False or y is False:
            return False
        return None if x is None or y is None else True
    a, b = truth_values(x), truth_values(y)
    false = (a == FALSE) | (b == FALSE)
    return boolean_array(~false, (a.isnull() | b.isnull()) & ~false, like=first_array(x, y))


@process("or")
def or_(args: ProcessArgs, env: EvalEnv) -> Any:
    x, y = _boolean(args, "x"), _boolean(args, "y")
    if first_array(x, y) is None:
        if x is True or y is True:
            return True
        return None if x is None or y is None else False
    a, b = truth_values(x), truth_values(y)
    true = (a == TRUE) | (b == TRUE)
    return boolean_array(true, (a.isnull() | b.isnull()) & ~true, like=first_array(x, y))


@process("xor")
def xor(args: ProcessArgs, env: EvalEnv) -> Any:
    x, y = _boolean(args, "x"), _boolean(args, "y")
    if first_array(x, y) is None:
        return None if x is None or y is None else x != y
    a, b = truth_values(x), truth_values(y)
    return boolean_array(a != b, a.isnull() | b.isnull(), like=first_array(x, y))


@process("if")
def if_(args: ProcessArgs, env: EvalEnv) -> Any:
    value = _boolean(args, "value")
    accept = _plain(args.get_required("accept"))
    reject = _plain(args.get_optional("reject"))
    if not isinstance(value, xr.DataArray):
        return accept if value is True else reject
    choices = [_pixel_choice(args, "accept", accept), _pixel_choice(args, "reject", reject)]
    result = xr.where(truth_values(value) == TRUE, *choices)
    if result.dtype.kind in "biuf":
        result = result.astype(CUBE_DTYPE)
    like = first_array(accept, reject, value)
    if like is not None and like.attrs and not result.attrs:
        result.attrs = dict(like.attrs)
    return result


@process("is_nodata")
def is_nodata(args: ProcessArgs, env: EvalEnv) -> Any:
    x = _plain(args.get_required("x"))
    if isinstance(x, xr.DataArray):
        return boolean_array(x.isnull(), like=x)
    return x is None


@process("is_nan")
def is_nan(args: ProcessArgs, env: EvalEnv) -> Any:
    x = _plain(args.get_required("x"))
    if isinstance(x, xr.DataArray):
        return boolean_array(x.isnull(), like=x)
    return isinstance(x, float) and math.isnan(x)


@process("is_infinite")
def is_infinite(args: ProcessArgs, env: EvalEnv) -> Any:
    x = _plain(args.get_required("x"))
    if isinstance(x, xr.DataArray):
        infinite = np.isinf(x) if x.dtype.kind == "f" else xr.zeros_like(x, dtype=bool)
        return boolean_array(infinite, like=x)
    return isinstance(x, float) and math.isinf(x)


@process("is_valid")
def is_valid(args: ProcessArgs, env: EvalEnv) -> Any:
    x = _plain(args.get_required("x"))
    if isinstance(x, xr.DataArray):
        valid = np.isfinite(x) if x.dtype.kind in "iuf" else x.notnull()
        return boolean_array(valid, like=x)
    if x is None:
        return False
    if isinstance(x, float):  # numbers must be finite; strings, arrays and objects are always valid
        return math.isfinite(x)
    return True


# --- helpers ------------------------------------------------------------------------------------

def _boolean(args: ProcessArgs, name: str) -> xr.DataArray | Truth:
    value = _plain(args.get_required(name))
    if value is None or isinstance(value, bool | xr.DataArray):
        return value
    raise args.invalid(name, f"expected a boolean, null or a data cube, got {type(value).__name__}")


def _pixel_choice(args: ProcessArgs, name: str, value: Any) -> Any:
    """`accept`/`reject` of `if` on arrays: a number, boolean, no-data or an array of the same cube."""
    if value is None:
        return np.nan
    if isinstance(value, bool):
        return TRUE if value else FALSE
    if isinstance(value, int | float | xr.DataArray):
        return value
    raise args.invalid(name, f"a data cube can only choose per pixel between numbers, booleans, no-data "
                             f"and data cubes, got {type(value).__name__}")


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
