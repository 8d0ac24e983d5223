"""Cube processes on small synthetic cubes: callbacks over cubes (apply, apply_dimension), dimensions
and labels, filters, temporal aggregation, merge_cubes and mask (no I/O)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import stratus_processing.processes  # noqa: F401  (registers the processes)
import xarray as xr
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.errors import (
    BandFilterParameterMissingException,
    DimensionExistsException,
    DimensionLabelCountMismatchException,
    DimensionMissingException,
    DimensionNotAvailableException,
    DistinctDimensionLabelsRequiredException,
    IncompatibleDataCubesException,
    LabelExistsException,
    LabelsNotEnumeratedException,
    OverlapResolverMissingException,
    TemporalExtentEmptyException,
    TooManyDimensionsException,
)
from stratus_processing.graph import evaluate_graph

from tests.unit.processing.processing_testkit import small_grid, utc

NAN = np.nan


def run(graph, **arguments):
    return evaluate_graph(graph, EvalEnv(), arguments=arguments)


def node(process_id, **arguments):
    """A one-node graph whose arguments may name graph parameters as `"$name"`."""
    resolved = {k: {"from_parameter": v[1:]} if isinstance(v, str) and v.startswith("$") else v
                for k, v in arguments.items()}
    return {"n": {"process_id": process_id, "arguments": resolved, "result": True}}


def callback(process_id, **arguments):
    return {"process_graph": node(process_id, **arguments)}


def daily_cube(start="2022-05-30", days=35, *, width=3, height=2):
    """(t, bands, y, x) with one band B04 whose value is the day number (0, 1, 2, ...) plus the pixel
    index / 100, so means over any set of days are easy to predict."""
    times = pd.date_range(start, periods=days, freq="D")
    pixels = np.arange(height * width).reshape(height, width) / 100
    values = np.arange(days)[:, None, None, None] + pixels[None, None]
    return cubes.make_cube(values, grid=small_grid(width, height), times=list(times), bands=["B04"],
                           common_names=["red"])


def four_band_cube():
    """(t, bands, y, x) with Sentinel-2-like bands; values band index * 10 + date index."""
    times = [utc(2022, 6, 1, 10), utc(2022, 6, 6, 10), utc(2022, 6, 11, 10)]
    bands, common = ["B02", "B04", "B08", "B8A"], ["blue", "red", "nir", "nir08"]
    values = (np.arange(4)[None, :, None, None] * 10 + np.arange(3)[:, None, None, None]) * np.ones((3, 4, 2, 3))
    return cubes.make_cube(values, grid=small_grid(3, 2), times=times, bands=bands, common_names=common)


# --- apply ------------------------------------------------------------------------------------------

def test_apply_with_a_linear_scale_range_like_callback():
    # Given a cube with values 0..34 and a callback scaling [0, 34] to [0, 255] (subtract, divide, multiply)
    cube = daily_cube()
    scale = {"process_graph": {
        "shift": {"process_id": "subtract", "arguments": {"x": {"from_parameter": "x"}, "y": 0}},
        "unit": {"process_id": "divide", "arguments": {"x": {"from_node": "shift"}, "y": 34}},
        "out": {"process_id": "multiply", "arguments": {"x": {"from_node": "unit"}, "y": 255}, "result": True},
    }}
    # When
    result = run(node("apply", data="$cube", process=scale), cube=cube)
    # Then every value is scaled, and dimensions, labels and the grid stay
    np.testing.assert_allclose(result.values, cube.values / 34 * 255)
    assert result.dims == cube.dims
    assert list(result["bands"].values) == ["B04"] and cubes.common_names(result) == {"B04": "red"}
    assert cubes.grid_of(result) == cubes.grid_of(cube)


def test_apply_with_context_and_a_constant_result():
    # Given a callback that ignores x and returns its context
    cube = daily_cube(days=2)
    # When
    result = run(node("apply", data="$cube", process=callback("add", x={"from_parameter": "context"}, y=0),
                      context=7), cube=cube)
    # Then the constant fills the whole cube
    assert result.shape == cube.shape and np.all(result.values == 7)


# --- apply_dimension ------------------------------------------------------------------------------

def test_apply_dimension_over_time_returning_fewer_values_gets_enumerated_labels():
    # Given a callback that returns [min, max] of each time series
    cube = daily_cube(days=5)
    process = {"process_graph": {
        "lo": {"process_id": "min", "arguments": {"data": {"from_parameter": "data"}}},
        "hi": {"process_id": "max", "arguments": {"data": {"from_parameter": "data"}}},
        "both": {"process_id": "array_create",
                 "arguments": {"data": [{"from_node": "lo"}, {"from_node": "hi"}]}, "result": True},
    }}
    # When
    result = run(node("apply_dimension", data="$cube", process=process, dimension="t"), cube=cube)
    # Then t has 2 labels 0 and 1, in the original dimension order
    assert result.dims == ("t", "bands", "y", "x")
    assert list(result["t"].values) == [0, 1]
    np.testing.assert_allclose(result.isel(t=0).values, cube.isel(t=0).values)
    np.testing.assert_allclose(result.isel(t=1).values, cube.isel(t=4).values)
    # and the cube still knows the time span it covers
    assert cubes.temporal_extent(result) == cubes.temporal_extent(cube)


def test_apply_dimension_keeps_labels_when_the_length_stays():
    # Given an element-wise callback over t (same number of values)
    cube = daily_cube(days=3)
    # When
    result = run(node("apply_dimension", data="$cube", dimension="t",
                      process=callback("multiply", x={"from_parameter": "data"}, y=2)), cube=cube)
    # Then
    np.testing.assert_array_equal(result["t"].values, cube["t"].values)
    np.testing.assert_allclose(result.values, cube.values * 2)


def test_apply_dimension_into_a_new_target_dimension():
    cube = four_band_cube()
    process = {"process_graph": {
        "lo": {"process_id": "min", "arguments": {"data": {"from_parameter": "data"}}},
        "hi": {"process_id": "max", "arguments": {"data": {"from_parameter": "data"}}},
        "both": {"process_id": "array_create",
                 "arguments": {"data": [{"from_node": "lo"}, {"from_node": "hi"}]}, "result": True},
    }}
    # When bands are summarised into a new dimension "stats"
    result = run(node("apply_dimension", data="$cube", process=process, dimension="bands",
                      target_dimension="stats"), cube=cube)
    # Then "stats" replaces "bands" where it was
    assert result.dims == ("t", "stats", "y", "x")
    assert list(result["stats"].values) == [0, 1] and cubes.COMMON_NAME not in result.coords
    np.testing.assert_allclose(result.sel(stats=1).values, cube.sel(bands="B8A").values)


def test_apply_dimension_on_a_missing_dimension():
    with pytest.raises(DimensionNotAvailableException):
        run(node("apply_dimension", data="$cube", dimension="z",
                 process=callback("multiply", x={"from_parameter": "data"}, y=2)), cube=daily_cube(days=2))


# --- dimensions and labels ------------------------------------------------------------------------

def test_add_then_drop_a_dimension():
    cube = daily_cube(days=2)
    added = run(node("add_dimension", data="$cube", name="source", label="S2", type="other"), cube=cube)
    assert added.dims == ("source", "t", "bands", "y", "x") and list(added["source"].values) == ["S2"]
    dropped = run(node("drop_dimension", data="$cube", name="source"), cube=added)
    xr.testing.assert_identical(dropped, cube)


def test_add_an_existing_dimension():
    with pytest.raises(DimensionExistsException):
        run(node("add_dimension", data="$cube", name="t", label="2020-01-01", type="temporal"), cube=daily_cube(days=2))


def test_drop_a_dimension_with_several_labels():
    with pytest.raises(DimensionLabelCountMismatchException):
        run(node("drop_dimension", data="$cube", name="t"), cube=daily_cube(days=2))


def test_dropping_time_keeps_the_temporal_extent():
    cube = daily_cube(days=1)
    result = run(node("drop_dimension", data="$cube", name="t"), cube=cube)
    assert "t" not in result.dims and cubes.temporal_extent(result) == cubes.temporal_extent(cube)


def test_dimension_labels_are_json_values():
    cube = daily_cube(days=2)
    assert run(node("dimension_labels", data="$cube", dimension="t"), cube=cube) == [
        "2022-05-30T00:00:00Z", "2022-05-31T00:00:00Z"]
    assert run(node("dimension_labels", data="$cube", dimension="bands"), cube=cube) == ["B04"]
    assert run(node("dimension_labels", data="$cube", dimension="x"), cube=cube) == list(cube["x"].values)


def test_a_renamed_band_dimension_is_still_the_band_dimension():
    # Given bands renamed to "spectral"
    renamed = run(node("rename_dimension", data="$cube", source="bands", target="spectral"), cube=four_band_cube())
    # When filtering bands
    result = run(node("filter_bands", data="$cube", bands=["nir"]), cube=renamed)
    # Then the renamed dimension was found by its type
    assert list(result["spectral"].values) == ["B08"]


def test_rename_labels_by_source_and_enumerated():
    cube = four_band_cube()
    result = run(node("rename_labels", data="$cube", dimension="bands", source=["B8A", "B02"],
                      target=["narrow_nir", "blue"]), cube=cube)
    assert list(result["bands"].values) == ["blue", "B04", "B08", "narrow_nir"]
    with pytest.raises(LabelExistsException):
        run(node("rename_labels", data="$cube", dimension="bands", source=["B02"], target=["B04"]), cube=cube)
    with pytest.raises(LabelsNotEnumeratedException):
        run(node("rename_labels", data="$cube", dimension="bands", target=["a", "b"]), cube=cube)


# --- filters ------------------------------------------------------------------------------------------

def test_filter_bands_by_name_common_name_and_wavelength():
    cube = four_band_cube()
    # Names and common names, in the requested order
    result = run(node("filter_bands", data="$cube", bands=["nir", "B02"]), cube=cube)
    assert list(result["bands"].values) == ["B08", "B02"]
    # Wavelengths (micrometres), from the common names' centre wavelengths: red and both NIR bands
    result = run(node("filter_bands", data="$cube", wavelengths=[[0.6, 0.9]]), cube=cube)
    assert list(result["bands"].values) == ["B04", "B08", "B8A"]


def test_filter_bands_needs_criteria_and_bands():
    with pytest.raises(BandFilterParameterMissingException):
        run(node("filter_bands", data="$cube"), cube=four_band_cube())
    with pytest.raises(DimensionMissingException):
        run(node("filter_bands", data="$cube", bands=["B04"]), cube=four_band_cube().isel(bands=0, drop=True))


def test_filter_temporal_is_left_closed():
    cube = daily_cube(days=5)  # 2022-05-30 .. 2022-06-03
    result = run(node("filter_temporal", data="$cube", extent=["2022-05-31", "2022-06-02T00:00:00Z"]), cube=cube)
    assert [str(v)[:10] for v in result["t"].values] == ["2022-05-31", "2022-06-01"]
    result = run(node("filter_temporal", data="$cube", extent=[None, "2022-05-31"]), cube=cube)
    assert result.sizes["t"] == 1
    with pytest.raises(TemporalExtentEmptyException):
        run(node("filter_temporal", data="$cube", extent=["2022-06-02", "2022-06-01"]), cube=cube)


def test_filter_labels_with_a_condition_on_the_label():
    # Keep bands whose name is "B08" or "B8A" (eq on the label value)
    condition = {"process_graph": {
        "a": {"process_id": "eq", "arguments": {"x": {"from_parameter": "value"}, "y": "B08"}},
        "b": {"process_id": "eq", "arguments": {"x": {"from_parameter": "value"}, "y": "B8A"}},
        "or": {"process_id": "or", "arguments": {"x": {"from_node": "a"}, "y": {"from_node": "b"}}, "result": True},
    }}
    result = run(node("filter_labels", data="$cube", dimension="bands", condition=condition), cube=four_band_cube())
    assert list(result["bands"].values) == ["B08", "B8A"]


# --- temporal aggregation -------------------------------------------------------------------------

def test_aggregate_temporal_period_month_means_per_month():
    # Given daily values from 2022-05-30 for 70 days (to 2022-08-07), one band, 2 x 3 pixels
    cube = daily_cube(days=70)
    # When
    result = run(node("aggregate_temporal_period", data="$cube", period="month", reducer=callback(
        "mean", data={"from_parameter": "data"})), cube=cube)
    # Then one label per month, formatted YYYY-MM, with the mean of that month's days
    assert list(result["t"].values) == ["2022-05", "2022-06", "2022-07", "2022-08"]
    assert result.dims == cube.dims
    day = np.arange(70)
    month = pd.date_range("2022-05-30", periods=70, freq="D").month
    pixel = cube.isel(t=0, bands=0).values
    for i, m in enumerate([5, 6, 7, 8]):
        np.testing.assert_allclose(result.isel(t=i, bands=0).values, day[month == m].mean() + pixel)
    # and the cube still knows the time span it stems from, also after reducing the months
    assert cubes.temporal_extent(result) == (utc(2022, 5, 30), utc(2022, 8, 7))
    reduced = run(node("reduce_dimension", data="$cube", dimension="t",
                       reducer=callback("max", data={"from_parameter": "data"})), cube=result)
    assert cubes.temporal_extent(reduced) == (utc(2022, 5, 30), utc(2022, 8, 7))


def test_aggregate_temporal_period_labels_are_complete():
    # Given two dates three months apart
    cube = xr.concat([daily_cube("2022-01-15", 1), daily_cube("2022-04-02", 1)], dim="t")
    result = run(node("aggregate_temporal_period", data="$cube", period="month", reducer=callback(
        "mean", data={"from_parameter": "data"})), cube=cube)
    # Then the months in between are there, with no-data
    assert list(result["t"].values) == ["2022-01", "2022-02", "2022-03", "2022-04"]
    assert np.isnan(result.isel(t=[1, 2]).values).all() and not np.isnan(result.isel(t=[0, 3]).values).any()


@pytest.mark.parametrize("period, start, days, labels", [
    ("season", "2022-11-25", 10, ["2022-son", "2022-djf"]),
    ("tropical-season", "2022-04-25", 10, ["2021-ndjfma", "2022-mjjaso"]),
    ("dekad", "2022-01-09", 3, ["2022-01", "2022-02"]),
    ("week", "2022-01-01", 3, ["2021-52", "2022-01"]),
    ("day", "2020-12-30", 3, ["2020-365", "2020-366", "2021-001"]),
    ("year", "2019-12-31", 2, ["2019", "2020"]),
    ("decade", "2019-12-31", 2, ["2010", "2020"]),
    ("decade-ad", "2020-12-31", 2, ["2011", "2021"]),
])
def test_aggregate_temporal_period_labels(period, start, days, labels):
    result = run(node("aggregate_temporal_period", data="$cube", period=period, reducer=callback(
        "mean", data={"from_parameter": "data"})), cube=daily_cube(start, days))
    assert list(result["t"].values) == labels


def test_aggregate_temporal_period_by_hour():
    times = [utc(2022, 6, 1, 10, 5), utc(2022, 6, 1, 10, 55), utc(2022, 6, 1, 12, 0)]
    cube = cubes.make_cube(np.array([1.0, 3.0, 5.0])[:, None, None], grid=small_grid(1, 1), times=times)
    result = run(node("aggregate_temporal_period", data="$cube", period="hour", reducer=callback(
        "mean", data={"from_parameter": "data"})), cube=cube)
    assert list(result["t"].values) == ["2022-06-01-10", "2022-06-01-11", "2022-06-01-12"]
    np.testing.assert_allclose(result.values.ravel(), [2.0, NAN, 5.0])


def test_aggregate_temporal_intervals_and_labels():
    cube = daily_cube(days=10)  # 2022-05-30 .. 2022-06-08
    intervals = [["2022-05-30", "2022-06-01"], ["2022-06-01", "2022-06-11"], ["2023-01-01", "2023-02-01"]]
    result = run(node("aggregate_temporal", data="$cube", intervals=intervals,
                      reducer=callback("max", data={"from_parameter": "data"})), cube=cube)
    # Default labels: the interval starts, as instants
    assert list(result["t"].values) == list(np.array(["2022-05-30", "2022-06-01", "2023-01-01"],
                                                     dtype="datetime64[ns]"))
    pixel = cube.isel(t=0, bands=0).values
    np.testing.assert_allclose(result.isel(t=0, bands=0).values, 1 + pixel)
    np.testing.assert_allclose(result.isel(t=1, bands=0).values, 9 + pixel)
    assert np.isnan(result.isel(t=2).values).all()
    # User labels
    result = run(node("aggregate_temporal", data="$cube", intervals=intervals, labels=["a", "b", "c"],
                      reducer=callback("max", data={"from_parameter": "data"})), cube=cube)
    assert list(result["t"].values) == ["a", "b", "c"]


def test_aggregate_temporal_errors():
    cube = daily_cube(days=3)
    mean = callback("mean", data={"from_parameter": "data"})
    with pytest.raises(DistinctDimensionLabelsRequiredException):
        run(node("aggregate_temporal", data="$cube", reducer=mean,
                 intervals=[["2022-05-30", "2022-06-01"], ["2022-05-30", "2022-06-02"]]), cube=cube)
    with pytest.raises(TemporalExtentEmptyException):
        run(node("aggregate_temporal", data="$cube", reducer=mean, intervals=[["2022-06-01", "2022-05-30"]]),
            cube=cube)
    two_times = run(node("add_dimension", data="$cube", name="t2", label="2020-01-01", type="temporal"), cube=cube)
    with pytest.raises(TooManyDimensionsException):
        run(node("aggregate_temporal_period", data="$cube", period="day", reducer=mean), cube=two_times)
    with pytest.raises(DimensionNotAvailableException):
        run(node("aggregate_temporal_period", data="$cube", period="day", reducer=mean),
            cube=cube.isel(t=0, drop=True))


# --- merge_cubes ------------------------------------------------------------------------------------

def test_merge_cubes_with_distinct_bands_appends_them():
    cube = four_band_cube()
    first, second = cube.sel(bands=["B04", "B08"]), cube.sel(bands=["B02"])
    result = run(node("merge_cubes", cube1="$a", cube2="$b"), a=first, b=second)
    assert list(result["bands"].values) == ["B04", "B08", "B02"]
    assert cubes.common_names(result) == {"B04": "red", "B08": "nir", "B02": "blue"}
    xr.testing.assert_equal(result.sel(bands="B02").drop_vars(cubes.COMMON_NAME),
                            cube.sel(bands="B02").drop_vars(cubes.COMMON_NAME))


def test_merge_cubes_overlap_in_time_needs_a_resolver():
    cube = daily_cube(days=4)
    first, second = cube.isel(t=[0, 1, 2]), cube.isel(t=[1, 2, 3]) * 10
    with pytest.raises(OverlapResolverMissingException):
        run(node("merge_cubes", cube1="$a", cube2="$b"), a=first, b=second)
    result = run(node("merge_cubes", cube1="$a", cube2="$b",
                      overlap_resolver=callback("add", x={"from_parameter": "x"}, y={"from_parameter": "y"})),
                 a=first, b=second)
    # The union of the time labels, sorted; overlapping steps resolved (x + y)
    np.testing.assert_array_equal(result["t"].values, cube["t"].values)
    np.testing.assert_allclose(result.isel(t=0).values, cube.isel(t=0).values)
    np.testing.assert_allclose(result.isel(t=1).values, cube.isel(t=1).values * 11)
    np.testing.assert_allclose(result.isel(t=3).values, cube.isel(t=3).values * 10)


def test_merge_a_lower_dimensional_cube_overlaps_everywhere():
    cube = daily_cube(days=2)
    dem = cube.isel(t=0, bands=0, drop=True) * 0 + 100
    result = run(node("merge_cubes", cube1="$a", cube2="$b",
                      overlap_resolver=callback("subtract", x={"from_parameter": "x"}, y={"from_parameter": "y"})),
                 a=cube, b=dem)
    assert result.dims == cube.dims
    np.testing.assert_allclose(result.values, cube.values - 100)


def test_merge_cubes_side_by_side_covers_both_extents():
    # Given the west and east halves of one grid
    cube = daily_cube(days=2, width=4)
    west, east = cube.isel(x=[0, 1]), cube.isel(x=[2, 3])
    # When
    result = run(node("merge_cubes", cube1="$a", cube2="$b"), a=west, b=east)
    # Then the pixels of both, on the whole grid
    xr.testing.assert_equal(result, cube)
    assert cubes.grid_of(result) == cubes.grid_of(cube)


# --- mask -------------------------------------------------------------------------------------------

def scl_scene():
    """Reflectances (t, bands B04/B08, y, x) and an SCL-like classification cube (t, bands SCL, y, x):
    4 = vegetation (clear), 8/9 = cloud, 0 = no data."""
    grid = small_grid(3, 2)
    times = [utc(2022, 6, 1, 10), utc(2022, 6, 6, 10)]
    scl = np.array([[[4, 8, 4], [9, 4, 0]], [[4, 4, 4], [4, 9, 4]]], dtype=float)
    data = np.arange(2 * 2 * 6, dtype=float).reshape(2, 2, 2, 3) + 1
    reflectance = cubes.make_cube(data, grid=grid, times=times, bands=["B04", "B08"], common_names=["red", "nir"])
    classes = cubes.make_cube(scl[:, None], grid=grid, times=times, bands=["SCL"])
    return reflectance, classes, scl


def test_mask_with_an_scl_band_sets_masked_pixels_to_nodata():
    # Given a cloud mask computed from SCL (not vegetation) and a two-band cube
    reflectance, classes, scl = scl_scene()
    graph = {
        "cloudy": {"process_id": "apply", "arguments": {
            "data": {"from_parameter": "scl"},
            "process": callback("neq", x={"from_parameter": "x"}, y=4)}},
        "masked": {"process_id": "mask", "arguments": {
            "data": {"from_parameter": "cube"}, "mask": {"from_node": "cloudy"}}, "result": True},
    }
    # When the single-band mask is applied to both bands
    result = run(graph, cube=reflectance, scl=classes)
    # Then masked pixels are NaN in every band, the others unchanged
    expected = np.where((scl != 4)[:, None], NAN, reflectance.values)
    np.testing.assert_array_equal(result.values, expected)
    assert result.dims == reflectance.dims and list(result["bands"].values) == ["B04", "B08"]


def test_mask_with_replacement_and_a_mask_without_time():
    reflectance, classes, scl = scl_scene()
    static = classes.isel(t=0, bands=0, drop=True) != 4  # (y, x): applied to every date and band
    result = run(node("mask", data="$cube", mask="$mask", replacement=-1), cube=reflectance, mask=static)
    expected = np.where((scl[0] != 4)[None, None], -1, reflectance.values)
    np.testing.assert_array_equal(result.values, expected)


def test_a_coarser_mask_is_resampled_onto_the_data_grid():
    # Given 10 m data (4 x 4 px) and a 20 m mask (2 x 2 px) masking its north-west quarter
    data = cubes.make_cube(np.arange(16.0).reshape(4, 4), grid=small_grid(4, 4))
    coarse = cubes.make_cube(np.array([[1.0, 0.0], [0.0, 0.0]]), grid=small_grid(2, 2, resolution=20.0))
    # When
    result = run(node("mask", data="$cube", mask="$mask"), cube=data, mask=coarse)
    # Then the data keep their grid, masked in the 2 x 2 px under the masking 20 m pixel
    assert cubes.grid_of(result) == cubes.grid_of(data)
    expected = np.arange(16.0).reshape(4, 4)
    expected[:2, :2] = NAN
    np.testing.assert_array_equal(result.values, expected)


def test_mask_with_other_labels_is_incompatible():
    reflectance, classes, _ = scl_scene()
    shifted = classes.assign_coords(t=classes["t"].values + np.timedelta64(1, "D"))
    with pytest.raises(IncompatibleDataCubesException):
        run(node("mask", data="$cube", mask="$mask"), cube=reflectance, mask=shifted)


# --- normalized_difference --------------------------------------------------------------------------

def test_normalized_difference_in_a_reducer_matches_ndvi():
    cube = four_band_cube() + 1
    reducer = {"process_graph": {
        "nir": {"process_id": "array_element", "arguments": {"data": {"from_parameter": "data"}, "label": "B08"}},
        "red": {"process_id": "array_element", "arguments": {"data": {"from_parameter": "data"}, "label": "B04"}},
        "nd": {"process_id": "normalized_difference",
               "arguments": {"x": {"from_node": "nir"}, "y": {"from_node": "red"}}, "result": True},
    }}
    result = run(node("reduce_dimension", data="$cube", dimension="bands", reducer=reducer), cube=cube)
    ndvi = run(node("ndvi", data="$cube"), cube=cube)
    xr.testing.assert_allclose(result, ndvi)


@pytest.mark.parametrize("x, y, expected", [(1, 1, 0.0), (2, 1, 1 / 3), (None, 1, None), (1, -1, np.inf)])
def test_normalized_difference_of_numbers(x, y, expected):
    assert run(node("normalized_difference", x=x, y=y)) == expected
