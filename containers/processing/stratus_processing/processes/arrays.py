"""Array processes (openEO category "arrays").

Inside a callback over a cube dimension the openEO "array" is that dimension of the cube, so
`array_element(data, label="B08")` selects a band for every pixel at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.errors import (
    ArrayElementNotAvailableException,
    ArrayElementParameterConflictException,
    ArrayElementParameterMissingException,
    ArrayNotLabeledException,
)
from stratus_processing.registry import ProcessArgs, process


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
    if index is not None and index < 0:
        raise args.invalid("index", "must be 0 or greater")

    if isinstance(data, xr.DataArray):
        dimension = env.array_dimension
        if dimension is None or dimension not in data.dims:
            raise args.invalid("data", "a data cube is an array only inside a callback over one of its dimensions")
        position = index if index is not None else _label_position(data, dimension, label)
        if position is None or position >= data.sizes[dimension]:
            if return_nodata:
                return xr.full_like(data.isel({dimension: 0}), np.nan).drop_vars(
                    _coords_along(data, dimension), errors="ignore")
            raise ArrayElementNotAvailableException()
        return data.isel({dimension: position})

    if isinstance(data, list):
        if label is not None:
            raise ArrayNotLabeledException()
        if index < len(data):
            return data[index]
        if return_nodata:
            return None
        raise ArrayElementNotAvailableException()
    raise args.invalid("data", f"expected an array, got {type(data).__name__}")


def _label_position(data: xr.DataArray, dimension: str, label: Any) -> int | None:
    labels = data[dimension].values
    if dimension == cubes.T or np.issubdtype(labels.dtype, np.datetime64):
        # Temporal labels compare as instants: "2022-06-02" matches a label at midnight that day.
        try:
            wanted = np.datetime64(pd.Timestamp(cubes.parse_utc(str(label))).tz_localize(None), "ns")
        except ValueError:
            return None
        matches = np.flatnonzero(labels.astype("datetime64[ns]") == wanted)
    else:
        matches = np.flatnonzero(np.asarray([str(v) for v in labels]) == str(label))
    return int(matches[0]) if matches.size else None


def _coords_along(data: xr.DataArray, dimension: str) -> list[str]:
    return [str(name) for name, coord in data.coords.items() if dimension in coord.dims]
