"""run_udf (openEO category "cubes"): a Python UDF on a data cube, run in the sandbox (`udf.sandbox`).

Inside `apply`, `apply_dimension`, `reduce_dimension` and `apply_neighborhood` the UDF gets the cube
the callback gets (the whole cube, a tile of it in tiled runs, or a neighbourhood window) with its
dimensions in the client's order (t, bands, y, x), as float64, and returns a cube: in
`reduce_dimension` one without the reduced dimension.
"""

from __future__ import annotations

import json

import numpy as np
from stratus import udf_runtimes
from stratus.errors import OpenEOApiException
from stratus.events import LogLevel

from stratus_processing.deferred import xr
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.registry import ProcessArgs, process
from stratus_processing.udf import sandbox


class InvalidRuntimeException(OpenEOApiException):
    status_code, code = 400, "InvalidRuntime"
    message_template = "The specified UDF runtime is not supported: '{runtime}'. Supported: Python."


class InvalidVersionException(OpenEOApiException):
    status_code, code = 400, "InvalidVersion"
    message_template = "The specified UDF runtime version is not supported: '{version}'. Supported: {versions}."


_LOG_LEVELS = {level.value: level for level in LogLevel}


@process("run_udf")
def run_udf(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    data = args.get_required("data")
    code = args.get_required("udf", expected_type=str)
    runtime = args.get_required("runtime", expected_type=str)
    version = args.get_optional("version", expected_type=str)
    context = args.get_optional("context", {})
    if runtime.lower() != udf_runtimes.PYTHON.lower():
        raise InvalidRuntimeException(runtime=runtime)
    if version is not None and version not in udf_runtimes.PYTHON_VERSIONS:
        raise InvalidVersionException(version=version, versions=", ".join(udf_runtimes.PYTHON_VERSIONS))
    if code.strip().startswith(("http://", "https://")) and "\n" not in code.strip():
        raise args.invalid("udf", "UDFs by URL are not supported: pass the UDF's code")
    if not isinstance(data, xr.DataArray) or not data.dims:
        raise args.invalid("data", "a UDF runs on a data cube")
    try:
        json.dumps(context)
    except (TypeError, ValueError):
        raise args.invalid("context", "a UDF's context must be JSON: numbers, strings, arrays and objects") \
            from None

    order = [d for d in data.dims if d not in cubes.DIMENSION_ORDER] + \
            [d for d in cubes.DIMENSION_ORDER if d in data.dims]
    outcome = sandbox.run_udf_code(code, data.transpose(*order).astype(cubes.CUBE_DTYPE), context)
    for entry in outcome.inspections:
        env.reporter.log(entry["message"], level=_LOG_LEVELS.get(entry["level"], LogLevel.INFO), path=args.path,
                         code=entry["code"])
    if outcome.output.strip():
        env.reporter.log(f"UDF output: {outcome.output.strip()}", level=LogLevel.DEBUG, path=args.path)
    return _with_metadata(outcome.cube, data)


def _with_metadata(result: xr.DataArray, source: xr.DataArray) -> xr.DataArray:
    """The UDF's cube with what the files don't carry: coordinates without a dimension of their own
    (the grid's reference, bands' common names) where their dimensions are unchanged, and the attributes."""
    if result.dtype.kind in "biu" or result.dtype != cubes.CUBE_DTYPE:
        result = result.astype(cubes.CUBE_DTYPE)
    for name, coord in source.coords.items():
        if name in result.coords or name in source.dims:
            continue
        if all(_same_dimension(result, source, str(d)) for d in coord.dims):
            result = result.assign_coords({name: coord})
    result.attrs = {**source.attrs, **result.attrs}
    return cubes.carry_metadata(result, source)


def _same_dimension(result: xr.DataArray, source: xr.DataArray, dimension: str) -> bool:
    if dimension not in result.dims or result.sizes[dimension] != source.sizes[dimension]:
        return False
    if dimension in source.indexes and dimension in result.indexes:
        return bool(np.array_equal(result[dimension].values, source[dimension].values))
    return True
