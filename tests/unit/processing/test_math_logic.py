"""Math, comparison and logic processes beyond the official conformance tests: the array paths
(whole cubes, as vectorised callbacks see them), no-data as NaN, and booleans stored as 1.0/0.0/NaN."""

from __future__ import annotations

import math

import numpy as np
import pytest
import stratus_processing.processes  # noqa: F401  (registers the processes)
import xarray as xr
from stratus.errors import ProcessParameterInvalidException
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.graph import evaluate_graph
from stratus_processing.processes.math import MinMaxSwappedException

from tests.unit.processing.processing_testkit import red_nir_cube

NAN = np.nan
RED = np.array([[[0.1, -0.2, NAN], [0.4, 0.0, 2.5]],
                [[NAN, 0.3, 0.6], [-1.5, 0.25, 0.2]]])
NIR = np.array([[[0.5, 0.4, 0.3], [NAN, 0.1, 0.2]],
                [[0.5, NAN, 0.6], [0.7, 0.25, 0.1]]])
# Every pair of (true, false, no-data) once, as cube booleans.
TRUTH_X = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, NAN, NAN, NAN])
TRUTH_Y = np.array([1.0, 0.0, NAN, 1.0, 0.0, NAN, 1.0, 0.0, NAN])


@pytest.fixture
def cube() -> xr.DataArray:
    return red_nir_cube(RED, NIR)


def call(process_id, **arguments):
    """One node applying `process_id`; DataArray arguments are passed as graph parameters."""
    parameters = {name: value for name, value in arguments.items() if isinstance(value, xr.DataArray)}
    graph_arguments = {name: {"from_parameter": name} if name in parameters else value
                       for name, value in arguments.items()}
    graph = {"n": {"process_id": process_id, "arguments": graph_arguments, "result": True}}
    return evaluate_graph(graph, EvalEnv(), arguments=parameters)


def as_values(value):
    """A boolean result on an array as a plain list with None for no-data (for truth tables)."""
    return [None if math.isnan(v) else bool(v) for v in np.asarray(value, dtype=float).ravel()]


def assert_same_cube(result, cube, expected):
    assert isinstance(result, xr.DataArray)
    assert result.dtype == np.float64
    assert result.dims == cube.dims
    np.testing.assert_allclose(result.values, expected, rtol=0, atol=1e-12, equal_nan=True)
    assert cubes.grid_of(result) == cubes.grid_of(cube)


# --- math on cubes -----------------------------------------------------------------------------

@pytest.mark.parametrize("process_id, numpy_function", [
    ("absolute", np.abs), ("sgn", np.sign), ("sqrt", np.sqrt), ("ceil", np.ceil), ("floor", np.floor),
    ("int", np.trunc), ("round", np.round), ("ln", np.log), ("cos", np.cos), ("arctan", np.arctan),
    ("artanh", np.arctanh), ("arcosh", np.arccosh),
])
def test_unary_math_is_elementwise_and_keeps_nodata(cube, process_id, numpy_function):
    # Given a cube with no-data pixels (NaN) and values outside some functions' domains
    # When the process gets the whole cube, as in apply
    result = call(process_id, x=cube)
    # Then every pixel is computed by numpy, NaN stays NaN, the grid survives
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = numpy_function(cube.values)
    assert_same_cube(result, cube, expected)
    assert np.isnan(result.values[np.isnan(cube.values)]).all()


def test_exp_and_rounding_with_precision_on_a_cube(cube):
    # Given a cube
    # When exponentiating and rounding to one decimal (half to even)
    exponentiated = call("exp", p=cube)
    rounded = call("round", x=cube * 10 + 0.05, p=1)
    # Then
    assert_same_cube(exponentiated, cube, np.exp(cube.values))
    assert_same_cube(rounded, cube, np.round(cube.values * 10 + 0.05, 1))


@pytest.mark.parametrize("process_id, other, numpy_function", [
    ("add", 1, np.add), ("subtract", 0.5, np.subtract), ("multiply", -2, np.multiply),
    ("divide", 0, np.divide), ("power", 2, np.power), ("log", 10, lambda x, _: np.log10(x)),
])
def test_binary_math_with_a_cube_and_a_number(cube, process_id, other, numpy_function):
    # Given the red band of a cube and a number
    red = cube.sel(bands="B04")
    names = {"power": ("base", "p"), "log": ("x", "base")}.get(process_id, ("x", "y"))
    # When
    result = call(process_id, **{names[0]: red, names[1]: other})
    # Then IEEE 754 semantics per pixel (x/0 is ±inf, 0/0 and log of negatives NaN), NaN stays NaN
    with np.errstate(invalid="ignore", divide="ignore"):
        assert_same_cube(result, red, numpy_function(RED, other))


def test_binary_math_of_two_cubes_broadcasts_by_dimension_name(cube):
    # Given the two bands as (t, y, x) arrays, as a reducer over bands sees them
    red, nir = cube.sel(bands="B04"), cube.sel(bands="B08")
    # When
    result = call("arctan2", y=nir, x=red)
    # Then
    assert_same_cube(result, red, np.arctan2(NIR, RED))


def test_nodata_next_to_a_cube_gives_a_nodata_cube(cube):
    # Given a cube and a null operand
    # When
    result = call("multiply", x=cube, y=None)
    # Then the result is a cube of the same shape, all no-data
    assert_same_cube(result, cube, np.full(cube.shape, NAN))


def test_mod_on_a_cube_has_the_sign_of_the_divisor(cube):
    # Given values of both signs
    values = cube.copy(data=np.where(np.isnan(cube.values), NAN, np.round(cube.values * 10)))
    # When
    by_three, by_minus_three, by_zero = (call("mod", x=values, y=d) for d in (3, -3, 0))
    # Then floored modulo (Python's %), and y = 0 behaves like a division by zero
    assert_same_cube(by_three, cube, np.mod(values.values, 3))
    assert_same_cube(by_minus_three, cube, np.mod(values.values, -3))
    with np.errstate(invalid="ignore", divide="ignore"):
        assert_same_cube(by_zero, cube, values.values / 0)


def test_clip_and_linear_scale_range_on_a_cube(cube):
    # Given a cube with values beyond [0, 1]
    # When
    clipped = call("clip", x=cube, min=0, max=1)
    scaled = call("linear_scale_range", x=cube, inputMin=0, inputMax=0.5, outputMin=0, outputMax=255)
    # Then values are bounded and no-data stays no-data
    assert_same_cube(clipped, cube, np.clip(cube.values, 0, 1))
    assert_same_cube(scaled, cube, np.clip(cube.values, 0, 0.5) / 0.5 * 255)


def test_clip_refuses_swapped_bounds(cube):
    with pytest.raises(MinMaxSwappedException):
        call("clip", x=cube, min=1, max=0)


@pytest.mark.parametrize("process_id, arguments, expected", [
    ("mod", {"x": 7, "y": -3}, -2), ("mod", {"x": -7, "y": 3}, 2), ("round", {"x": 1250, "p": -2}, 1200),
    ("round", {"x": 7, "p": 2}, 7), ("int", {"x": -0.9}, 0), ("ceil", {"x": 2.000001}, 3),
    ("absolute", {"x": np.float32(-2.5)}, 2.5), ("power", {"base": 2, "p": -1}, 0.5),
    ("log", {"x": 8, "base": 2}, 3), ("linear_scale_range", {"x": 5, "inputMin": 0, "inputMax": 10}, 0.5),
])
def test_math_on_plain_numbers(process_id, arguments, expected):
    result = call(process_id, **arguments)
    assert result == expected
    assert type(result) in (int, float)


@pytest.mark.parametrize("process_id, arguments", [
    ("absolute", {"x": "1"}), ("sqrt", {"x": True}), ("add", {"x": [1], "y": 1}), ("round", {"x": 1.5, "p": 0.5}),
])
def test_math_rejects_non_numbers(process_id, arguments):
    with pytest.raises(ProcessParameterInvalidException):
        call(process_id, **arguments)


# --- comparisons on cubes ------------------------------------------------------------------------

@pytest.mark.parametrize("process_id, numpy_compare", [
    ("gt", np.greater), ("gte", np.greater_equal), ("lt", np.less), ("lte", np.less_equal),
    ("eq", np.equal), ("neq", np.not_equal),
])
def test_comparisons_on_a_cube_give_float_booleans_with_nodata(cube, process_id, numpy_compare):
    # Given a cube with no-data pixels
    # When comparing it with a number
    result = call(process_id, x=cube, y=0.25)
    # Then true is 1.0, false is 0.0 and no-data pixels compare to no-data (NaN), not to false
    expected = np.where(np.isnan(cube.values), NAN, numpy_compare(cube.values, 0.25).astype(float))
    assert_same_cube(result, cube, expected)


def test_comparing_two_cubes_is_nodata_where_either_is(cube):
    # Given the two bands
    red, nir = cube.sel(bands="B04"), cube.sel(bands="B08")
    # When
    result = call("lt", x=red, y=nir)
    # Then
    expected = np.where(np.isnan(RED) | np.isnan(NIR), NAN, (RED < NIR).astype(float))
    assert_same_cube(result, red, expected)


def test_eq_on_a_cube_with_delta(cube):
    # Given a cube, when comparing with a tolerance
    result = call("eq", x=cube, y=0.3, delta=0.15)
    # Then values within 0.15 of 0.3 are equal
    expected = np.where(np.isnan(cube.values), NAN, (np.abs(cube.values - 0.3) <= 0.15).astype(float))
    assert_same_cube(result, cube, expected)


@pytest.mark.parametrize("process_id", ["eq", "gt", "lte"])
def test_comparing_a_cube_with_a_string_is_false_except_nodata(cube, process_id):
    result = call(process_id, x=cube, y="0.1")
    assert_same_cube(result, cube, np.where(np.isnan(cube.values), NAN, 0.0))


def test_comparing_a_cube_with_nodata_is_nodata(cube):
    assert_same_cube(call("gt", x=None, y=cube), cube, np.full(cube.shape, NAN))


def test_eq_compares_a_boolean_cube_with_true(cube):
    # Given a boolean cube (1.0/0.0/NaN)
    mask = call("gt", x=cube, y=0.25)
    # When comparing it with the plain boolean true
    result = call("eq", x=mask, y=True)
    # Then true is 1.0 (the cube convention), so it is the mask itself
    assert_same_cube(result, cube, mask.values)


@pytest.mark.parametrize("exclude_max", [False, True])
def test_between_on_a_cube(cube, exclude_max):
    result = call("between", x=cube, min=0, max=0.5, exclude_max=exclude_max)
    upper = np.less if exclude_max else np.less_equal
    expected = np.where(np.isnan(cube.values), NAN, ((cube.values >= 0) & upper(cube.values, 0.5)).astype(float))
    assert_same_cube(result, cube, expected)


def test_between_with_swapped_bounds_on_a_cube_is_false(cube):
    result = call("between", x=cube, min=0.5, max=0)
    assert_same_cube(result, cube, np.where(np.isnan(cube.values), NAN, 0.0))


@pytest.mark.parametrize("process_id, x, y, expected", [
    ("gte", "a", "a", True), ("lte", True, True, True), ("gt", "a", "a", False), ("lte", "a", "b", False),
    ("eq", "Straße", "STRASSE", False), ("eq", np.float64(0.5), 0.5, True), ("neq", True, 1, True),
    ("gt", np.int64(3), 2, True),
])
def test_comparisons_on_plain_values(process_id, x, y, expected):
    assert call(process_id, x=x, y=y) is expected


def test_case_insensitive_eq_folds_case():
    assert call("eq", x="Straße", y="STRASSE", case_sensitive=False) is True


@pytest.mark.parametrize("process_id", ["eq", "gt"])
def test_comparisons_reject_arrays_and_objects(process_id):
    with pytest.raises(ProcessParameterInvalidException, match="'y'"):
        call(process_id, x=1, y=[1])


# --- logic on cubes -------------------------------------------------------------------------------

@pytest.mark.parametrize("process_id", ["and", "or", "xor"])
def test_three_valued_logic_on_arrays_matches_the_plain_truth_table(process_id):
    # Given every combination of true/false/no-data as cube booleans
    x, y = xr.DataArray(TRUTH_X, dims="x"), xr.DataArray(TRUTH_Y, dims="x")
    # When evaluated on the arrays at once
    result = call(process_id, x=x, y=y)
    # Then each pixel is what the process gives for the same plain values
    plain = [call(process_id, x=a, y=b) for a, b in zip(as_values(TRUTH_X), as_values(TRUTH_Y), strict=True)]
    assert result.dtype == np.float64
    assert as_values(result) == plain


def test_not_on_an_array_keeps_nodata():
    result = call("not", x=xr.DataArray(TRUTH_X, dims="x"))
    assert as_values(result) == [None if v is None else not v for v in as_values(TRUTH_X)]


def test_logic_mixes_plain_values_and_cubes(cube):
    # Given a boolean cube and plain operands
    mask = call("gt", x=cube, y=0.25)
    # When
    with_false, with_nodata, or_true = (call("and", x=False, y=mask), call("and", x=None, y=mask),
                                        call("or", x=mask, y=True))
    # Then false wins over no-data in `and`, true in `or`; no-data stays no-data otherwise
    assert_same_cube(with_false, cube, np.zeros(cube.shape))
    assert_same_cube(with_nodata, cube, np.where(mask.values == 0, 0.0, NAN))
    assert_same_cube(or_true, cube, np.ones(cube.shape))


def test_logic_reads_bool_and_numeric_arrays_leniently():
    # Given a bool-dtype array and a numeric one (non-zero is true, NaN no-data)
    flags = xr.DataArray(np.array([True, False, True]), dims="x")
    numbers = xr.DataArray(np.array([2.5, 0.0, NAN]), dims="x")
    # When
    result = call("and", x=flags, y=numbers)
    # Then
    assert as_values(result) == [True, False, None]


def test_logic_rejects_numbers_outside_arrays():
    with pytest.raises(ProcessParameterInvalidException, match="'x'"):
        call("not", x=1)


def test_if_on_a_cube_picks_per_pixel(cube):
    # Given a condition with no-data pixels
    condition = call("gt", x=cube, y=0.25)
    # When choosing between the cube and a number, and with the default reject
    chosen = call("if", value=condition, accept=cube, reject=-1)
    masked = call("if", value=condition, accept=cube)
    # Then true picks accept; false and no-data pick reject (default: no-data)
    assert_same_cube(chosen, cube, np.where(condition.values == 1, cube.values, -1.0))
    assert_same_cube(masked, cube, np.where(condition.values == 1, cube.values, NAN))


def test_if_on_a_cube_refuses_choices_it_cannot_store(cube):
    with pytest.raises(ProcessParameterInvalidException, match="'accept'"):
        call("if", value=call("gt", x=cube, y=0), accept="A", reject="B")


def test_checks_on_a_cube_are_never_nodata(cube):
    # Given a cube with NaN (no-data) and infinite values
    values = cube.copy(data=np.where(cube.values > 2, np.inf, cube.values))
    # When
    nodata, nan, valid = (call(p, x=values) for p in ("is_nodata", "is_nan", "is_valid"))
    # Then plain 1.0/0.0 booleans
    assert_same_cube(nodata, cube, np.isnan(values.values).astype(float))
    assert_same_cube(nan, cube, np.isnan(values.values).astype(float))
    assert_same_cube(valid, cube, np.isfinite(values.values).astype(float))


# --- the convention in callbacks -----------------------------------------------------------------

def test_masking_in_apply_with_if_and_gt(cube):
    # Given apply with a callback keeping values above 0.25
    callback = {
        "gt": {"process_id": "gt", "arguments": {"x": {"from_parameter": "x"}, "y": 0.25}},
        "if": {"process_id": "if", "result": True, "arguments": {
            "value": {"from_node": "gt"}, "accept": {"from_parameter": "x"}}}}
    graph = {"a": {"process_id": "apply", "result": True, "arguments": {
        "data": {"from_parameter": "cube"}, "process": {"process_graph": callback}}}}
    # When
    result = evaluate_graph(graph, EvalEnv(), arguments={"cube": cube})
    # Then
    assert_same_cube(result, cube, np.where(cube.values > 0.25, cube.values, NAN))


def test_counting_dates_with_sum_of_a_comparison(cube):
    # Given a reducer over t that counts the dates above 0.25 (no-data dates don't count)
    reducer = {
        "gt": {"process_id": "gt", "arguments": {"x": {"from_parameter": "data"}, "y": 0.25}},
        "sum": {"process_id": "sum", "result": True, "arguments": {"data": {"from_node": "gt"}}}}
    graph = {"r": {"process_id": "reduce_dimension", "result": True, "arguments": {
        "data": {"from_parameter": "cube"}, "dimension": "t", "reducer": {"process_graph": reducer}}}}
    # When
    result = evaluate_graph(graph, EvalEnv(), arguments={"cube": cube})
    # Then
    expected = np.nansum(np.where(np.isnan(cube.values), NAN, cube.values > 0.25), axis=0)
    np.testing.assert_array_equal(result.values, expected)
