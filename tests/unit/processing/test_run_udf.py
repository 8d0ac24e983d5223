"""run_udf in the engine: a Python UDF inside apply, apply_dimension, reduce_dimension and
apply_neighborhood equals numpy on the same cube, runs tile by tile where its caller is pixel-local,
and behaves as the openeo client's own UDF runner does (the shim against the real client)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import stratus_processing.processes  # noqa: F401  (registers the processes)
import xarray as xr
from openeo.udf.run_code import execute_local_udf
from stratus.domain.fanout_plan import analyse_split
from stratus.errors import ProcessParameterInvalidException
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.graph import ProcessGraph, evaluate_graph
from stratus_processing.processes.udf import InvalidRuntimeException, InvalidVersionException
from stratus_processing.reporting import RecordingReporter
from stratus_processing.runner import evaluate
from stratus_processing.tiling import tiling_obstacle

from tests.unit.processing.processing_testkit import small_grid, utc
from tests.unit.processing.test_tiling import load_node, make_env, read_outputs, save_node

# Each pixel's series minus its mean over t, and an inspect() entry for the job's log.
DETREND = """
import numpy as np
import xarray
from openeo.udf import XarrayDataCube, inspect

def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
    array = cube.get_array()
    inspect(message=f"dims {list(array.dims)}", level="debug")
    return XarrayDataCube(array - array.mean("t", skipna=True) + context.get("offset", 0))
"""
MAX_OVER_T = """
import xarray

def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    return cube.max("t")
"""
# The client docs' smoothing example: a UDF over each pixel's time series (pandas).
INTERPOLATE = """
import pandas as pd

def apply_timeseries(series: pd.Series, context: dict) -> pd.Series:
    return series.interpolate(limit_direction="both")
"""
# Works on the client's numpy arrays and on the shim's pandas series alike.
RESCALE_SERIES = """
import numpy as np
import pandas as pd

def apply_timeseries(series: pd.Series, context: dict) -> pd.Series:
    return (series - np.nanmin(series)) * 2
"""
# The generic form: the UDF changes the UdfData it gets.
SQUARE_UDF_DATA = """
from openeo.udf import UdfData, XarrayDataCube

def apply_udf_data(data: UdfData):
    data.set_datacube_list([XarrayDataCube(cube.get_array() ** 2) for cube in data.get_datacube_list()])
"""
# With the client docs' companion `apply_metadata` (never called: the result cube tells its metadata).
MINUS_WINDOW_MEAN = """
from openeo.metadata import CollectionMetadata
from openeo.udf import XarrayDataCube

def apply_metadata(metadata: CollectionMetadata, context: dict) -> CollectionMetadata:
    return metadata

def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
    array = cube.get_array()
    return XarrayDataCube(array - array.mean(["y", "x"], skipna=True))
"""


@pytest.fixture(scope="module")
def cube():
    """(t: 4, bands: 2, y: 6, x: 7) with gaps."""
    values = np.random.default_rng(13).uniform(0, 1, (4, 2, 6, 7))
    values[0, 0, 1, 1] = values[2, 1, 3, 4] = values[0:2, 0, 5, 6] = np.nan
    times = [utc(2022, 6, day) for day in (1, 6, 11, 16)]
    return cubes.make_cube(values, grid=small_grid(7, 6), times=times, bands=["B04", "B08"])


def run_udf_node(code, data=None, **arguments):
    return {"process_graph": {"u": {"process_id": "run_udf", "result": True, "arguments": {
        "data": data or {"from_parameter": "data"}, "udf": code, "runtime": "Python", **arguments}}}}


def evaluate_on(cube, process_id, callback_name, callback, reporter=None, **arguments):
    graph = {"n": {"process_id": process_id, "result": True, "arguments": {
        "data": {"from_parameter": "cube"}, callback_name: callback, **arguments}}}
    return evaluate_graph(graph, EvalEnv(reporter=reporter or RecordingReporter()), arguments={"cube": cube})


def test_a_udf_in_apply_dimension_over_t_equals_numpy_and_logs_its_inspections(cube):
    reporter = RecordingReporter()
    result = evaluate_on(cube, "apply_dimension", "process", run_udf_node(DETREND, context={"offset": 10}),
                         reporter=reporter, dimension="t")
    np.testing.assert_allclose(result.values, cube.values - np.nanmean(cube.values, axis=0) + 10)
    assert result.dims == cube.dims and list(result.bands.values) == ["B04", "B08"]
    assert cubes.SPATIAL_REF in result.coords and result.coords[cubes.COMMON_NAME].dims == ("bands",)
    assert {"message": "dims ['t', 'bands', 'y', 'x']", "level": "debug", "code": "User",
            "path": [{"node_id": "u", "process_id": "run_udf"}], "data": None} in reporter.logs


def test_a_udf_in_reduce_dimension_and_apply_equals_numpy(cube):
    reduced = evaluate_on(cube, "reduce_dimension", "reducer", run_udf_node(MAX_OVER_T), dimension="t")
    np.testing.assert_array_equal(reduced.values, np.nanmax(cube.values, axis=0))
    assert reduced.dims == ("bands", "y", "x")
    # in apply the UDF gets the callback's `x`
    applied = evaluate_on(cube, "apply", "process", run_udf_node(MAX_OVER_T.replace('cube.max("t")', "cube * 2 + 1"),
                                                                 data={"from_parameter": "x"}))
    np.testing.assert_array_equal(applied.values, cube.values * 2 + 1)


def test_apply_timeseries_interpolates_each_pixels_series_as_pandas_does(cube):
    result = evaluate_on(cube, "apply_dimension", "process", run_udf_node(INTERPOLATE), dimension="t")
    expected = np.apply_along_axis(lambda s: pd.Series(s).interpolate(limit_direction="both").values, 0, cube.values)
    np.testing.assert_allclose(result.values, expected)
    assert not np.isnan(result.values).any()


def test_a_udf_in_apply_neighborhood_gets_each_window(cube):
    size = [{"dimension": "x", "value": 4, "unit": "px"}, {"dimension": "y", "value": 6, "unit": "px"}]
    result = evaluate_on(cube, "apply_neighborhood", "process", run_udf_node(MINUS_WINDOW_MEAN), size=size,
                         overlap=None)
    expected = cube.values.copy()
    for col in (0, 4):  # two windows: 6 × 4 px and 6 × 3 px
        window = expected[..., :, col:col + 4]
        window -= np.nanmean(window, axis=(-2, -1), keepdims=True)
    np.testing.assert_allclose(result.values, expected)


def test_the_shim_gives_what_the_openeo_client_gives(cube):
    """The same UDFs through the real client's `execute_local_udf` and through the sandbox. (The client
    hands apply_timeseries numpy arrays; the shim the pandas series its signature names.)"""
    plain = xr.DataArray(cube.values, dims=cube.dims, coords={d: cube[d].values for d in cube.dims})
    for code in (DETREND, RESCALE_SERIES, SQUARE_UDF_DATA):
        theirs = execute_local_udf(code, plain).get_datacube_list()[0].get_array()
        ours = evaluate_graph(run_udf_node(code, data={"from_parameter": "cube"})["process_graph"], EvalEnv(),
                              arguments={"cube": cube})
        np.testing.assert_allclose(ours.values, theirs.values)
        assert ours.dims == theirs.dims


def test_unknown_runtimes_versions_and_contexts_are_refused_before_running_anything(cube):
    with pytest.raises(InvalidRuntimeException):
        evaluate_on(cube, "apply", "process", run_udf_node("", data={"from_parameter": "x"}, runtime="R"))
    with pytest.raises(InvalidVersionException) as raised:
        evaluate_on(cube, "apply", "process", run_udf_node("", data={"from_parameter": "x"}, version="2.7"))
    assert raised.value.status_code == 400 and "3, 3.11" in raised.value.message
    with pytest.raises(ProcessParameterInvalidException) as raised:
        evaluate_graph(run_udf_node(DETREND, data={"from_parameter": "cube"}, context={"from_parameter": "cube"})
                       ["process_graph"], EvalEnv(), arguments={"cube": cube})
    assert raised.value.params["parameter"] == "context"


def test_udfs_in_callbacks_run_tile_by_tile_and_equal_the_whole_cube(demo_s3, tmp_path):
    process = {"process_graph": {
        "load": load_node(),
        "udf": {"process_id": "apply_dimension", "arguments": {
            "data": {"from_node": "load"}, "dimension": "t", "process": run_udf_node(DETREND)}},
        "save": save_node("udf", "netCDF"),
    }}
    top_level = {"load": load_node(), "u": run_udf_node(DETREND, data={"from_node": "load"})["process_graph"]["u"]}
    assert tiling_obstacle(ProcessGraph(process["process_graph"])) is None
    assert "at the top level sees the whole cube" in tiling_obstacle(ProcessGraph(top_level))
    # the fan-out planner splits by the same rule
    assert analyse_split(process["process_graph"]).splittable
    (obstacle,) = analyse_split(top_level).obstacles
    assert obstacle.process_id == "run_udf"
    tiled_env, whole_env = make_env(demo_s3, tmp_path / "tiled"), make_env(demo_s3, tmp_path / "whole")
    evaluate(process, tiled_env, tile_size=64)
    assert any(e["message"].startswith("Tiled execution: 4 tile(s)") for e in tiled_env.reporter.logs)
    evaluate(process, whole_env, tiling=False)
    tiled, whole = read_outputs(tiled_env.results), read_outputs(whole_env.results)
    assert list(tiled) == list(whole)
    for name in whole:
        np.testing.assert_array_equal(tiled[name], whole[name], err_msg=name)
