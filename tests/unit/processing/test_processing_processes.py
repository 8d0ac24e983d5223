"""The process implementations on small synthetic cubes and plain values (no I/O)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import stratus_processing.processes  # noqa: F401  (registers the processes)
import xarray as xr
from stratus.errors import ProcessParameterInvalidException
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.errors import (
    ArrayElementNotAvailableException,
    ArrayElementParameterConflictException,
    ArrayElementParameterMissingException,
    ArrayNotLabeledException,
    BandExistsException,
    DimensionAmbiguousException,
    DimensionNotAvailableException,
    NirBandAmbiguousException,
)
from stratus_processing.graph import evaluate_graph

from tests.unit.processing.processing_testkit import red_nir_cube, small_grid, utc

NAN = np.nan

# Three dates, 2 × 3 pixels; NaN marks no-data (one pixel has no valid date at all).
RED = np.array([
    [[0.10, 0.20, 0.30], [0.05, NAN, NAN]],
    [[0.12, 0.22, 0.32], [0.07, 0.40, NAN]],
    [[0.14, NAN, 0.34], [0.09, 0.50, NAN]],
])
NIR = np.array([
    [[0.50, 0.40, 0.30], [0.02, NAN, NAN]],
    [[0.52, 0.42, 0.36], [0.03, 0.60, NAN]],
    [[0.54, NAN, 0.38], [0.04, 0.70, NAN]],
])


def numpy_ndvi():
    with np.errstate(invalid="ignore"):
        return (NIR - RED) / (NIR + RED)


def nanreduce(function, values, axis=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return function(values, axis=axis)


def run(graph, **arguments):
    return evaluate_graph(graph, EvalEnv(), arguments=arguments)


def reduce_graph(dimension, reducer_graph):
    return {"r": {"process_id": "reduce_dimension", "result": True, "arguments": {
        "data": {"from_parameter": "cube"}, "dimension": dimension, "reducer": {"process_graph": reducer_graph}}}}


def reducer(process_id, **extra):
    return {"x": {"process_id": process_id, "result": True,
                  "arguments": {"data": {"from_parameter": "data"}, **extra}}}


@pytest.fixture
def cube():
    return red_nir_cube(RED, NIR)


# --- math ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("process_id, x, y, expected", [
    ("add", 1, 2, 3), ("subtract", 1, 2.5, -1.5), ("multiply", 3, 4, 12), ("divide", 1, 4, 0.25),
    ("divide", 1, 0, math.inf), ("divide", -1, 0, -math.inf),
    ("add", None, 1, None), ("multiply", 2, None, None),
])
def test_arithmetic_on_numbers(process_id, x, y, expected):
    result = run({"n": {"process_id": process_id, "arguments": {"x": x, "y": y}, "result": True}})
    assert result == expected


def test_division_of_zero_by_zero_is_nan():
    assert math.isnan(run({"n": {"process_id": "divide", "arguments": {"x": 0, "y": 0}, "result": True}}))


def test_arithmetic_on_cubes_keeps_the_grid(cube):
    # Given band math on the whole cube
    graph = {"m": {"process_id": "multiply", "arguments": {"x": {"from_parameter": "cube"}, "y": 2}, "result": True}}
    # When
    result = run(graph, cube=cube)
    # Then
    np.testing.assert_array_equal(result.sel(bands="B04").values, RED * 2)
    assert cubes.grid_of(result) == cubes.grid_of(cube)


def test_arithmetic_rejects_strings():
    with pytest.raises(ProcessParameterInvalidException, match="'y'"):
        run({"n": {"process_id": "add", "arguments": {"x": 1, "y": "2"}, "result": True}})


# --- reducers on plain arrays -------------------------------------------------------------------

@pytest.mark.parametrize("process_id, data, expected", [
    ("mean", [1, 2, 3, 6], 3), ("median", [5, 1, 3], 3), ("min", [4, -1, 2], -1), ("max", [4, -1, 2], 4),
    ("sum", [1, 2, 3], 6), ("mean", [1, None, 3], 2), ("sum", [None, None], None), ("mean", [], None),
])
def test_reducers_on_arrays(process_id, data, expected):
    graph = {"r": {"process_id": process_id, "arguments": {"data": data}, "result": True}}
    assert run(graph) == expected


def test_reducers_can_refuse_nodata():
    graph = {"r": {"process_id": "mean", "arguments": {"data": [1, None, 3], "ignore_nodata": False}, "result": True}}
    assert run(graph) is None


def test_reducing_a_cube_outside_a_callback_is_invalid(cube):
    graph = {"r": {"process_id": "mean", "arguments": {"data": {"from_parameter": "cube"}}, "result": True}}
    with pytest.raises(ProcessParameterInvalidException, match="callback"):
        run(graph, cube=cube)


# --- reduce_dimension ---------------------------------------------------------------------------

@pytest.mark.parametrize("process_id, numpy_function", [
    ("mean", np.nanmean), ("median", np.nanmedian), ("min", np.nanmin), ("max", np.nanmax),
])
def test_reduce_over_time_ignores_nodata(cube, process_id, numpy_function):
    # When
    result = run(reduce_graph("t", reducer(process_id)), cube=cube)
    # Then
    assert result.dims == ("bands", "y", "x")
    np.testing.assert_allclose(result.sel(bands="B04").values, nanreduce(numpy_function, RED), equal_nan=True)


def test_sum_over_time_of_only_nodata_is_nodata(cube):
    result = run(reduce_graph("t", reducer("sum")), cube=cube)
    expected = np.where(np.isnan(RED).all(axis=0), np.nan, np.nansum(RED, axis=0))
    np.testing.assert_allclose(result.sel(bands="B04").values, expected, equal_nan=True)


def test_reduce_over_time_with_nodata_not_ignored(cube):
    result = run(reduce_graph("t", reducer("mean", ignore_nodata=False)), cube=cube)
    np.testing.assert_allclose(result.sel(bands="B08").values, NIR.mean(axis=0), equal_nan=True)


def test_reduce_keeps_grid_and_remembers_the_time_span(cube):
    # When
    result = run(reduce_graph("t", reducer("mean")), cube=cube)
    # Then
    assert cubes.grid_of(result) == cubes.grid_of(cube)
    assert cubes.temporal_extent(result) == (utc(2022, 6, 2, 10), utc(2022, 6, 12, 10))
    assert "t" not in result.coords


def test_band_math_in_a_bands_reducer_equals_ndvi(cube):
    # Given the NDVI as the openeo client writes it with band math
    def band(label):
        return {"process_id": "array_element", "arguments": {"data": {"from_parameter": "data"}, "label": label}}
    band_math = {
        "nir": band("B08"), "red": band("B04"),
        "diff": {"process_id": "subtract", "arguments": {"x": {"from_node": "nir"}, "y": {"from_node": "red"}}},
        "total": {"process_id": "add", "arguments": {"x": {"from_node": "nir"}, "y": {"from_node": "red"}}},
        "ratio": {"process_id": "divide", "result": True,
                  "arguments": {"x": {"from_node": "diff"}, "y": {"from_node": "total"}}},
    }
    # When
    result = run(reduce_graph("bands", band_math), cube=cube)
    # Then the bands dimension is gone and values equal the numpy NDVI
    assert result.dims == ("t", "y", "x")
    assert "bands" not in result.coords and cubes.COMMON_NAME not in result.coords
    np.testing.assert_allclose(result.values, numpy_ndvi(), equal_nan=True)


def test_reduce_unknown_dimension(cube):
    with pytest.raises(DimensionNotAvailableException, match="'z'"):
        run(reduce_graph("z", reducer("mean")), cube=cube)


def test_reducer_that_keeps_the_dimension_is_invalid(cube):
    keep = {"x": {"process_id": "multiply", "arguments": {"x": {"from_parameter": "data"}, "y": 1}, "result": True}}
    with pytest.raises(ProcessParameterInvalidException, match="reducer"):
        run(reduce_graph("t", keep), cube=cube)


def test_reducer_over_an_array_of_cube_pieces(cube):
    # Given mean([array_element(data, 0), array_element(data, 2)]) over time
    def element(index):
        return {"process_id": "array_element", "arguments": {"data": {"from_parameter": "data"}, "index": index}}
    graph = {"first": element(0), "last": element(2),
             "m": {"process_id": "mean", "result": True,
                   "arguments": {"data": [{"from_node": "first"}, {"from_node": "last"}]}}}
    # When
    result = run(reduce_graph("t", graph), cube=cube)
    # Then
    np.testing.assert_allclose(result.sel(bands="B04").values, nanreduce(np.nanmean, RED[[0, 2]]), equal_nan=True)


# --- array_element ------------------------------------------------------------------------------

def element_graph(data, **arguments):
    return {"e": {"process_id": "array_element", "arguments": {"data": data, **arguments}, "result": True}}


def test_array_element_on_plain_arrays():
    assert run(element_graph([5, 6, 7], index=1)) == 6
    assert run(element_graph([5, 6, 7], index=3, return_nodata=True)) is None
    with pytest.raises(ArrayElementNotAvailableException):
        run(element_graph([5, 6, 7], index=3))
    with pytest.raises(ArrayNotLabeledException):
        run(element_graph([5, 6, 7], label="a"))
    with pytest.raises(ArrayElementParameterMissingException):
        run(element_graph([5, 6, 7]))
    with pytest.raises(ArrayElementParameterConflictException):
        run(element_graph([5, 6, 7], index=0, label="a"))


def test_array_element_by_time_label(cube):
    # Given a reducer over t picking the second date by its label
    graph = reduce_graph("t", {"x": {"process_id": "array_element", "result": True, "arguments": {
        "data": {"from_parameter": "data"}, "label": "2022-06-07T10:00:00Z"}}})
    # When
    result = run(graph, cube=cube)
    # Then
    np.testing.assert_array_equal(result.sel(bands="B08").values, NIR[1])


def test_array_element_missing_label(cube):
    graph = reduce_graph("bands", {"x": {"process_id": "array_element", "result": True, "arguments": {
        "data": {"from_parameter": "data"}, "label": "B11"}}})
    with pytest.raises(ArrayElementNotAvailableException):
        run(graph, cube=cube)
    graph["r"]["arguments"]["reducer"]["process_graph"]["x"]["arguments"]["return_nodata"] = True
    assert np.isnan(run(graph, cube=cube).values).all()


# --- ndvi ---------------------------------------------------------------------------------------

def ndvi_graph(**arguments):
    return {"n": {"process_id": "ndvi", "arguments": {"data": {"from_parameter": "cube"}, **arguments}, "result": True}}


def test_ndvi_from_common_names(cube):
    # When
    result = run(ndvi_graph(), cube=cube)
    # Then
    assert result.dims == ("t", "y", "x")
    np.testing.assert_allclose(result.values, numpy_ndvi(), equal_nan=True)
    assert cubes.grid_of(result) == cubes.grid_of(cube)


def test_ndvi_into_a_target_band(cube):
    result = run(ndvi_graph(target_band="NDVI"), cube=cube)
    assert cubes.band_names(result) == ["B04", "B08", "NDVI"]
    np.testing.assert_allclose(result.sel(bands="NDVI").values, numpy_ndvi(), equal_nan=True)
    np.testing.assert_array_equal(result.sel(bands="B04").values, RED)


def test_ndvi_with_band_names_instead_of_common_names(cube):
    result = run(ndvi_graph(nir="B04", red="B08"), cube=cube)  # swapped on purpose
    np.testing.assert_allclose(result.values, -numpy_ndvi(), equal_nan=True)


def test_ndvi_errors(cube):
    with pytest.raises(BandExistsException):
        run(ndvi_graph(target_band="B04"), cube=cube)
    with pytest.raises(NirBandAmbiguousException):
        run(ndvi_graph(nir="swir"), cube=cube)
    without_bands = cube.sel(bands="B04", drop=True)
    with pytest.raises(DimensionAmbiguousException):
        run(ndvi_graph(), cube=without_bands)


def test_arrays_on_different_grids_are_not_silently_cropped(cube):
    # Given two cubes whose x coordinates differ
    shifted = red_nir_cube(RED, NIR, grid=small_grid(3, 2, west=600010.0))
    graph = {"a": {"process_id": "add", "result": True,
                   "arguments": {"x": {"from_parameter": "a"}, "y": {"from_parameter": "b"}}}}
    # When / Then
    with pytest.raises(ValueError):
        run(graph, a=cube, b=shifted)


def test_make_cube_round_trips_the_grid():
    grid = small_grid(7, 3, epsg=32633, west=601234.0, north=5341000.0, resolution=20.0)
    cube = cubes.make_cube(np.zeros((3, 7)), grid=grid)
    assert cubes.grid_of(cube) == grid
    assert isinstance(cube, xr.DataArray) and cube.dims == ("y", "x")
