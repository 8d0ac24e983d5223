"""Array processes, reducers and statistics on cubes along a dimension (vectorised), on labeled arrays
and on plain arrays, beyond the official conformance tests (tests/conformance)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import stratus_processing.processes  # noqa: F401  (registers the processes)
import xarray as xr
from stratus.errors import ProcessParameterInvalidException
from stratus_processing.cube import make_cube
from stratus_processing.env import EvalEnv
from stratus_processing.graph import evaluate_graph
from stratus_processing.processes.arrays import ArrayLabelConflictException
from stratus_processing.processes.statistics import (
    AscendingProbabilitiesRequiredException,
    QuantilesParameterConflictException,
    QuantilesParameterMissingException,
)

from tests.unit.processing.processing_testkit import small_grid, utc

NAN, INF = np.nan, np.inf

# Four dates, 2 × 3 pixels (t, y, x); NaN is no-data. Pixel (0, 1) has no valid date at all,
# pixel (1, 2) a single one.
VALUES = np.array([
    [[1.0, NAN, 3.0], [NAN, 5.0, NAN]],
    [[2.0, NAN, 1.0], [7.0, 6.0, NAN]],
    [[0.0, NAN, 2.0], [8.0, 4.5, 6.0]],
    [[5.0, NAN, NAN], [9.0, 4.0, NAN]],
])
# The same pixels as booleans (1.0 true, 0.0 false, NaN no-data).
BOOLEANS = np.array([
    [[1.0, NAN, 1.0], [0.0, NAN, NAN]],
    [[1.0, NAN, 0.0], [0.0, 1.0, NAN]],
    [[1.0, NAN, 1.0], [0.0, NAN, NAN]],
])


def time_cube(values):
    values = np.asarray(values, dtype=float)
    return make_cube(values, grid=small_grid(values.shape[2], values.shape[1]),
                     times=[utc(2022, 6, 1 + 5 * i) for i in range(values.shape[0])])


@pytest.fixture
def cube():
    return time_cube(VALUES)


def run(graph, env=None, **arguments):
    return evaluate_graph(graph, env or EvalEnv(), arguments=arguments)


def call(process_id, **arguments):
    """One process on plain values."""
    return run({"n": {"process_id": process_id, "arguments": arguments, "result": True}})


def along(dimension, process_id, data, **arguments):
    """One process as inside a callback over `dimension` of `data` (e.g. apply_dimension's process)."""
    graph = {"n": {"process_id": process_id, "result": True,
                   "arguments": {"data": {"from_parameter": "data"}, **arguments}}}
    return run(graph, EvalEnv(array_dimension=dimension), data=data)


def reduce_time(process_id, cube, **arguments):
    reducer = {"r": {"process_id": process_id, "result": True,
                     "arguments": {"data": {"from_parameter": "data"}, **arguments}}}
    graph = {"n": {"process_id": "reduce_dimension", "result": True, "arguments": {
        "data": {"from_parameter": "cube"}, "dimension": "t", "reducer": {"process_graph": reducer}}}}
    return run(graph, cube=cube)


def quietly(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return function(*args, **kwargs)


def nodata_where_nothing_valid(expected, values=VALUES):
    return np.where(np.isnan(values).all(axis=0), NAN, expected)


# --- reducers along a cube dimension --------------------------------------------------------------

@pytest.mark.parametrize("process_id, numpy_function", [
    ("mean", np.nanmean), ("median", np.nanmedian), ("min", np.nanmin), ("max", np.nanmax),
    ("sum", np.nansum), ("product", np.nanprod),
    ("sd", lambda v, axis: np.nanstd(v, axis=axis, ddof=1)),
    ("variance", lambda v, axis: np.nanvar(v, axis=axis, ddof=1)),
])
def test_statistics_over_time_skip_nodata(cube, process_id, numpy_function):
    # Given a cube with no-data, one pixel without any valid date
    # When reducing over t
    result = reduce_time(process_id, cube)
    # Then every pixel is the NaN-skipping statistic of its dates, no-data where nothing is valid
    assert result.dims == ("y", "x")
    expected = nodata_where_nothing_valid(quietly(numpy_function, VALUES, axis=0))
    np.testing.assert_allclose(result.values, expected, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_mean_over_time_of_a_large_cube_is_numpys_nanmean_bit_for_bit(dtype):
    # Given 5 dates of 300 × 250 px (several pieces of the piecewise sum, the last one partial), with
    # no-data swaths, a pixel without any valid date, and float32 values (a single-precision load)
    rng = np.random.default_rng(7)
    values = rng.normal(0.4, 0.2, size=(5, 300, 250)).astype(dtype)
    values[1, :, :60] = np.nan
    values[3, 150:, 100:] = np.nan
    values[:, 7, 11] = np.nan
    cube = make_cube(values, grid=small_grid(250, 300), times=[utc(2022, 6, 1 + 5 * i) for i in range(5)])
    # When reducing over t
    result = reduce_time("mean", cube)
    # Then the type stays, and the values are numpy's nanmean of the float64 values, rounded to it
    assert result.dtype == dtype
    expected = quietly(np.nanmean, values.astype(np.float64), axis=0).astype(dtype)
    np.testing.assert_array_equal(result.values, expected)
    assert np.isnan(result.values[7, 11])
    # And along t of a cube whose t is not the first dimension (another path), the same numbers
    moved = reduce_time("mean", cube.transpose("y", "t", "x"))
    np.testing.assert_array_equal(moved.transpose("y", "x").values, expected)


@pytest.mark.parametrize("process_id, numpy_function", [
    ("mean", np.mean), ("max", np.max), ("sum", np.sum), ("product", np.prod),
    ("variance", lambda v, axis: np.var(v, axis=axis, ddof=1)),
])
def test_statistics_over_time_with_nodata_not_ignored(cube, process_id, numpy_function):
    # Given ignore_nodata = false
    result = reduce_time(process_id, cube, ignore_nodata=False)
    # Then a pixel with any no-data date is no-data
    np.testing.assert_allclose(result.values, quietly(numpy_function, VALUES, axis=0), equal_nan=True)


def test_sample_variance_needs_two_values(cube):
    # Given pixel (1, 2) with a single valid date
    result = reduce_time("variance", cube)
    # Then its sample variance is undefined (no-data), like for plain arrays
    assert np.isnan(result.values[1, 2])
    assert call("variance", data=[6]) is None


def test_first_and_last_skip_nodata(cube):
    # When taking the first and last valid value over t
    first, last = reduce_time("first", cube), reduce_time("last", cube)
    # Then each pixel gets its own first/last valid date's value
    np.testing.assert_array_equal(first.values, [[1.0, NAN, 3.0], [7.0, 5.0, 6.0]])
    np.testing.assert_array_equal(last.values, [[5.0, NAN, 2.0], [9.0, 4.0, 6.0]])
    assert "t" not in first.coords


def test_first_and_last_with_nodata_not_ignored(cube):
    # When no-data counts as a value
    first = reduce_time("first", cube, ignore_nodata=False)
    last = reduce_time("last", cube, ignore_nodata=False)
    # Then they are the first and last date as they are
    np.testing.assert_array_equal(first.values, VALUES[0])
    np.testing.assert_array_equal(last.values, VALUES[-1])


# --- count ----------------------------------------------------------------------------------------

def test_count_valid_values_by_default():
    # Given an infinite value besides the no-data ones
    values = VALUES.copy()
    values[2, 1, 1] = INF
    # When counting without a condition
    result = reduce_time("count", time_cube(values))
    # Then only valid values count (is_valid: neither no-data, NaN nor infinite)
    np.testing.assert_array_equal(result.values, [[4, 0, 3], [3, 3, 1]])


def test_count_all_values(cube):
    result = reduce_time("count", cube, condition=True)
    np.testing.assert_array_equal(result.values, np.full((2, 3), 4.0))


def test_count_with_a_condition_callback(cube):
    # Given the condition x > context
    condition = {"gt": {"process_id": "gt", "result": True,
                        "arguments": {"x": {"from_parameter": "x"}, "y": {"from_parameter": "context"}}}}
    # When counting over t with context 2
    result = reduce_time("count", cube, condition={"process_graph": condition}, context=2)
    # Then each pixel counts its dates above 2; no-data never satisfies the condition
    np.testing.assert_array_equal(result.values, [[1, 0, 1], [3, 4, 1]])


def test_count_on_plain_arrays_with_a_condition():
    condition = {"gt": {"process_id": "gt", "result": True, "arguments": {"x": {"from_parameter": "x"}, "y": 2}}}
    assert call("count", data=[0, 1, 2, 3, 4, 5, None], condition={"process_graph": condition}) == 3


def test_count_refuses_false_as_condition():
    with pytest.raises(ProcessParameterInvalidException, match="condition"):
        call("count", data=[1], condition=False)


# --- all, any ---------------------------------------------------------------------------------------

def test_all_and_any_over_time():
    # Given boolean pixels: always true, all no-data, mixed, always false, true + no-data, all no-data
    booleans = time_cube(BOOLEANS)
    # When ignoring no-data (the default)
    # Then all-no-data pixels are vacuously all-true and not any-true
    np.testing.assert_array_equal(reduce_time("all", booleans).values, [[1, 1, 0], [0, 1, 1]])
    np.testing.assert_array_equal(reduce_time("any", booleans).values, [[1, 0, 1], [0, 1, 0]])
    # And when not ignoring it, no-data wins unless a value decides (false for all, true for any)
    np.testing.assert_array_equal(reduce_time("all", booleans, ignore_nodata=False).values,
                                  [[1, NAN, 0], [0, NAN, NAN]])
    np.testing.assert_array_equal(reduce_time("any", booleans, ignore_nodata=False).values,
                                  [[1, NAN, 1], [0, 1, NAN]])


# --- arrays along a cube dimension -------------------------------------------------------------------

def test_quantiles_over_time_replace_the_dimension(cube):
    # When computing quartiles along t
    result = along("t", "quantiles", cube, probabilities=[0.25, 0.5, 0.75])
    # Then t holds the three quantiles of each pixel (type 7, NaN skipped), unlabeled, in place
    assert result.dims == ("t", "y", "x")
    assert result.sizes["t"] == 3
    assert "t" not in result.coords
    expected = quietly(np.nanquantile, VALUES, [0.25, 0.5, 0.75], axis=0)
    np.testing.assert_allclose(result.values, expected, equal_nan=True)


def test_quantiles_as_number_of_intervals_and_with_nodata_not_ignored(cube):
    # Given q = 2 (the median) and ignore_nodata = false
    result = along("t", "quantiles", cube, probabilities=2, ignore_nodata=False)
    # Then only pixels without no-data have a value
    assert result.sizes["t"] == 1
    np.testing.assert_allclose(result.values[0], [[1.5, NAN, NAN], [NAN, 4.75, NAN]], equal_nan=True)


def test_quantiles_with_infinite_values_take_the_limit():
    cube = time_cube(np.array([1.5, INF, 5.75, -1.25]).reshape(4, 1, 1))
    result = along("t", "quantiles", cube, probabilities=[0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(result.values.ravel(), [-1.25, 0.8125, 3.625, INF, INF])


def test_extrema_over_time(cube):
    result = along("t", "extrema", cube)
    assert result.dims == ("t", "y", "x")
    expected = np.stack([quietly(np.nanmin, VALUES, axis=0), quietly(np.nanmax, VALUES, axis=0)])
    np.testing.assert_array_equal(result.values, expected)


def test_sort_over_time_drops_nodata_per_pixel(cube):
    # When sorting along t, dropping no-data (the default)
    result = along("t", "sort", cube)
    # Then every pixel is sorted, padded with no-data at the end up to the longest pixel
    assert result.dims == ("t", "y", "x")
    assert result.sizes["t"] == 4
    np.testing.assert_array_equal(result.values[:, 0, 2], [1, 2, 3, NAN])
    np.testing.assert_array_equal(result.values[:, 1, 1], [4, 4.5, 5, 6])


def test_sort_over_time_shortens_the_dimension_to_the_longest_pixel():
    cube = time_cube(np.array([[[3.0, NAN]], [[NAN, NAN]], [[1.0, 2.0]]]))
    result = along("t", "sort", cube)
    np.testing.assert_array_equal(result.values[:, 0, :], [[1, 2], [3, NAN]])


@pytest.mark.parametrize("nodata, expected", [(True, [9, 8, 7, NAN]), (False, [NAN, 9, 8, 7])])
def test_sort_over_time_descending_keeps_nodata(cube, nodata, expected):
    result = along("t", "sort", cube, asc=False, nodata=nodata)
    np.testing.assert_array_equal(result.values[:, 1, 0], expected)


def test_array_find_over_time(cube):
    # Given pixel (0, 0) = [1, 2, 0, 5] and (0, 2) = [3, 1, 2, NaN]
    first = along("t", "array_find", cube, value=2)
    last = along("t", "array_find", cube, value=2, reverse=True)
    # Then the index of the match per pixel, no-data where there is none
    np.testing.assert_array_equal(first.values, [[1, NAN, 2], [NAN, NAN, NAN]])
    np.testing.assert_array_equal(last.values, first.values)
    assert np.isnan(along("t", "array_find", cube, value=None).values).all()


def test_array_contains_on_plain_arrays_and_over_time(cube):
    assert call("array_contains", data=["sentinel-2a", "sentinel-2b"], value="sentinel-2b") is True
    assert call("array_contains", data=["sentinel-2a"], value="Sentinel-2A") is False
    assert call("array_contains", data=[1, None, "1"], value=1.0) is True
    assert call("array_contains", data=["1", None], value=1) is False
    assert call("array_contains", data=[None], value=None) is False
    # pixel (0, 0) over time is [1, 2, 0, 5]; (0, 2) is [3, 1, 2, NaN]
    np.testing.assert_array_equal(along("t", "array_contains", cube, value=5).values[0], [1, 0, 0])
    assert not along("t", "array_contains", cube, value="5").values.any()


def test_array_create_from_cube_pieces_uses_the_callback_dimension(cube):
    # Given [array_element(data, 0), 7, array_element(data, 3)] inside a callback over t
    def element(index):
        return {"process_id": "array_element", "arguments": {"data": {"from_parameter": "data"}, "index": index}}

    graph = {"a": element(0), "b": element(3), "c": {"process_id": "array_create", "result": True, "arguments": {
        "data": [{"from_node": "a"}, 7, {"from_node": "b"}], "repeat": 2}}}
    result = run(graph, EvalEnv(array_dimension="t"), data=cube)
    # Then the array runs along t (unlabeled), every pixel holding its own values
    assert result.dims == ("t", "y", "x")
    assert "t" not in result.coords
    np.testing.assert_array_equal(result.values[:, 0, 0], [1, 7, 5, 1, 7, 5])


def test_array_concat_along_a_labeled_dimension(cube):
    # Given the cube along t and plain values appended
    graph = {"c": {"process_id": "array_concat", "result": True, "arguments": {
        "array1": {"from_parameter": "data"}, "array2": [10, None]}}}
    result = run(graph, EvalEnv(array_dimension="t"), data=cube)
    # Then the values are appended to every pixel and the labels dropped (one side is unlabeled)
    assert result.dims == ("t", "y", "x")
    assert result.sizes["t"] == 6
    assert "t" not in result.coords
    np.testing.assert_array_equal(result.values[:, 0, 0], [1, 2, 0, 5, 10, NAN])


def test_array_concat_of_labeled_cubes_keeps_labels_and_refuses_conflicts(cube):
    graph = {"c": {"process_id": "array_concat", "result": True, "arguments": {
        "array1": {"from_parameter": "a"}, "array2": {"from_parameter": "b"}}}}
    env = EvalEnv(array_dimension="t")
    # Given two cubes with distinct dates
    result = run(graph, env, a=cube.isel(t=[0, 1]), b=cube.isel(t=[3]))
    # Then the labels are kept
    np.testing.assert_array_equal(result["t"].values, cube["t"].values[[0, 1, 3]])
    # And a date in both is a conflict
    with pytest.raises(ArrayLabelConflictException):
        run(graph, env, a=cube, b=cube.isel(t=[0]))


def test_apply_dimension_takes_quantiles_and_sort_results(cube):
    # Given apply_dimension over t with quantiles, then with sort
    def apply_over_time(process_id, **arguments):
        process = {"q": {"process_id": process_id, "result": True,
                         "arguments": {"data": {"from_parameter": "data"}, **arguments}}}
        return run({"a": {"process_id": "apply_dimension", "result": True, "arguments": {
            "data": {"from_parameter": "cube"}, "dimension": "t", "process": {"process_graph": process}}}}, cube=cube)

    quartiles = apply_over_time("quantiles", probabilities=[0.25, 0.5])
    ordered = apply_over_time("sort", nodata=True)
    # Then quantiles make a shorter t numbered from 0, sort keeps the length and the dates
    assert quartiles.dims == cube.dims
    assert list(quartiles["t"].values) == [0, 1]
    np.testing.assert_allclose(quartiles.values, quietly(np.nanquantile, VALUES, [0.25, 0.5], axis=0), equal_nan=True)
    np.testing.assert_array_equal(ordered["t"].values, cube["t"].values)
    np.testing.assert_array_equal(ordered.values[:, 0, 2], [1, 2, 3, NAN])


def test_a_cube_is_an_array_only_inside_a_callback(cube):
    with pytest.raises(ProcessParameterInvalidException, match="callback"):
        run({"s": {"process_id": "sort", "arguments": {"data": {"from_parameter": "c"}}, "result": True}}, c=cube)


# --- labeled arrays outside any cube -----------------------------------------------------------------

@pytest.fixture
def labeled():
    return xr.DataArray([3.0, NAN, 1.0], dims=["labels"], coords={"labels": ["a", "b", "c"]})


@pytest.mark.parametrize("process_id, arguments, expected", [
    ("mean", {}, 2.0), ("first", {}, 3.0), ("last", {"ignore_nodata": False}, 1.0), ("count", {}, 2),
    ("sort", {"nodata": True}, [1.0, 3.0, None]), ("extrema", {}, [1.0, 3.0]),
    ("quantiles", {"probabilities": 2}, [2.0]), ("array_find", {"value": 1}, 2),
    ("array_element", {"label": "c"}, 1.0),
])
def test_labeled_arrays_give_plain_values(labeled, process_id, arguments, expected):
    # Given a labeled array with no-data (NaN) outside any cube
    # Then processes see its values, and results are plain JSON values
    assert call(process_id, data=labeled, **arguments) == expected


def test_array_concat_of_labeled_arrays(labeled):
    other = xr.DataArray([5.0], dims=["labels"], coords={"labels": ["d"]})
    result = call("array_concat", array1=labeled, array2=other)
    assert list(result["labels"].values) == ["a", "b", "c", "d"]
    assert call("array_concat", array1=labeled, array2=[7]) == [3.0, None, 1.0, 7]
    with pytest.raises(ArrayLabelConflictException):
        call("array_concat", array1=labeled, array2=labeled)


# --- plain arrays --------------------------------------------------------------------------------------

def test_nan_is_a_number_in_plain_arrays_but_null_is_nodata():
    assert np.isnan(call("max", data=[NAN, 1, None]))
    assert call("max", data=[2, 1, None]) == 2
    assert np.isnan(call("first", data=[NAN, 1]))
    assert call("first", data=[None, 1]) == 1


def test_sort_temporal_strings_as_instants():
    data = ["2022-06-01T12:00:00+02:00", "2022-06-01T11:00:00Z", None]
    assert call("sort", data=data) == ["2022-06-01T12:00:00+02:00", "2022-06-01T11:00:00Z"]


@pytest.mark.parametrize("arguments, error", [
    ({}, QuantilesParameterMissingException),
    ({"probabilities": [0.5], "q": 2}, QuantilesParameterConflictException),
    ({"probabilities": [0.5, 0.25]}, AscendingProbabilitiesRequiredException),
])
def test_quantiles_parameter_errors(arguments, error):
    with pytest.raises(error):
        call("quantiles", data=[1, 2, 3], **arguments)


def test_quantiles_deprecated_q():
    assert call("quantiles", data=[2, 4, 4, 4, 5, 5, 7, 9], q=4) == [4, 4.5, 5.5]
