"""Finding and calling the UDF function in the user's code, as the openeo client's
`openeo.udf.run_code.run_udf_code` does (ported from openeo 0.53, Apache-2.0): the first of
`apply_timeseries(series: pandas.Series, context) -> pandas.Series`,
`apply_datacube(cube: XarrayDataCube | xarray.DataArray, context) -> same` (or `apply_hypercube`)
and `apply_udf_data(data: UdfData)` whose name and annotations match."""

from __future__ import annotations

import functools
import inspect
import math

import numpy
import pandas
import xarray

from openeo.udf import OpenEoUdfException
from openeo.udf.structured_data import StructuredData
from openeo.udf.udf_data import UdfData
from openeo.udf.xarraydatacube import XarrayDataCube


def execution_globals() -> dict:
    """The names a UDF may use without importing them (as the client's back-end context)."""
    return {"numpy": numpy, "np": numpy, "xarray": xarray, "pandas": pandas, "pd": pandas, "math": math,
            "UdfData": UdfData, "XarrayDataCube": XarrayDataCube, "DataCube": XarrayDataCube,
            "StructuredData": StructuredData, "__name__": "__udf__"}


def _annotation_name(annotation) -> str:
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type):
        module = annotation.__module__
        return (module + "." if module != str.__module__ else "") + annotation.__name__
    return str(annotation)


def _is(annotation, kind: type, *aliases: str) -> bool:
    return annotation is kind or _annotation_name(annotation) in {_annotation_name(kind), *aliases}


def _is_series(annotation) -> bool:
    return _is(annotation, pandas.Series)


def _is_udf_cube(annotation) -> bool:
    return _is(annotation, XarrayDataCube, "openeo_udf.api.datacube.DataCube")


def _is_data_array(annotation) -> bool:
    return _is(annotation, xarray.DataArray)


def _is_udf_data(annotation) -> bool:
    return _is(annotation, UdfData, "openeo_udf.api.udf_data.UdfData")


def _apply_timeseries(array: xarray.DataArray, callback) -> xarray.DataArray:
    """The callback on each pixel's series along t (or time)."""
    times = [i for i, d in enumerate(array.dims) if d in ("t", "time")]
    if len(times) != 1:
        raise OpenEoUdfException("apply_timeseries needs a cube with a time dimension ('t')")
    position = times[0]
    index = pandas.Index(array[array.dims[position]].values) if array.dims[position] in array.indexes else None
    series = numpy.moveaxis(array.values, position, -1)
    shape = series.shape
    applied = numpy.asarray([numpy.asarray(callback(pandas.Series(s, index=index)))
                             for s in series.reshape((-1, shape[-1]))])
    if applied.shape != (int(numpy.prod(shape[:-1])), shape[-1]):
        raise OpenEoUdfException("apply_timeseries must return a series as long as the one it gets")
    applied = numpy.moveaxis(applied.reshape(shape), -1, position)
    return xarray.DataArray(applied, coords=array.coords, dims=array.dims, name=array.name)


def run_udf_code(code, data: UdfData, namespace: dict | None = None) -> UdfData:
    """Run the UDF function that `code` (source text or a compiled code object) defines on `data`."""
    module = namespace if namespace is not None else execution_globals()
    exec(code, module)
    for name, function in list(module.items()):
        if not callable(function):
            continue
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            continue
        params = signature.parameters
        first = next(iter(params.values()), None)
        if (name == "apply_timeseries" and "series" in params and "context" in params
                and _is_series(params["series"].annotation) and _is_series(signature.return_annotation)):
            callback = functools.partial(function, context=data.user_context)
            data.set_datacube_list([XarrayDataCube(_apply_timeseries(cube.array, callback))
                                    for cube in data.get_datacube_list()])
            return data
        if (name in ("apply_hypercube", "apply_datacube") and "cube" in params and "context" in params
                and _is_udf_cube(params["cube"].annotation) and _is_udf_cube(signature.return_annotation)):
            _one_cube(data)
            data.set_datacube_list([function(cube=data.get_datacube_list()[0], context=data.user_context)])
            return data
        if (name == "apply_datacube" and "cube" in params and "context" in params
                and _is_data_array(params["cube"].annotation) and _is_data_array(signature.return_annotation)):
            _one_cube(data)
            result = function(cube=data.get_datacube_list()[0].get_array(), context=data.user_context)
            data.set_datacube_list([XarrayDataCube(result)])
            return data
        if len(params) == 1 and _is_udf_data(first.annotation):
            function(data)
            return data
    raise OpenEoUdfException(
        "No UDF found: define apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube, "
        "apply_timeseries(series: pandas.Series, context: dict) -> pandas.Series or "
        "apply_udf_data(data: UdfData), with these annotations.")


def _one_cube(data: UdfData) -> None:
    if len(data.get_datacube_list()) != 1:
        raise ValueError(f"The provided UDF expects exactly one datacube, but {len(data.get_datacube_list())} "
                         f"were provided.")
