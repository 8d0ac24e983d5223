"""The processes without official tests on small synthetic cubes: climatology (climatological_normal,
anomaly), reshaping (trim_cube, flatten/unflatten_dimension, reduce_spatial, aggregate_spatial_window,
resample_cube_temporal), array processes inside callbacks over a cube dimension, and inspect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import stratus_processing.processes  # noqa: F401  (registers the processes)
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.graph import evaluate_graph
from stratus_processing.reporting import RecordingReporter

from tests.unit.processing.processing_testkit import small_grid

NAN = np.nan


def run(graph, env=None, **arguments):
    return evaluate_graph(graph, env or EvalEnv(), arguments=arguments)


def node(process_id, **arguments):
    resolved = {k: {"from_parameter": v[1:]} if isinstance(v, str) and v.startswith("$") else v
                for k, v in arguments.items()}
    return {"n": {"process_id": process_id, "arguments": resolved, "result": True}}


def callback(process_id, **arguments):
    return {"process_graph": node(process_id, **arguments)}


def series(times, values, *, width=2, height=1):
    """(t, y, x): per time step `values[i]` plus the pixel index * 1000."""
    pixels = np.arange(height * width).reshape(height, width) * 1000.0
    data = np.asarray(values, dtype=float)[:, None, None] + pixels[None]
    return cubes.make_cube(data, grid=small_grid(width, height), times=list(pd.DatetimeIndex(times)))


# --- climatology -------------------------------------------------------------------------------------

def monthly_cube(first="2018-12-01", months=37):
    times = pd.date_range(first, periods=months, freq="MS")
    return series(times, np.arange(months))  # value = months since the first


def test_climatological_normal_per_month_over_the_period():
    cube = monthly_cube()  # 2018-12 .. 2021-12
    normals = run(node("climatological_normal", data="$c", period="month", climatology_period=["2019", "2020"]),
                  c=cube)
    assert list(normals["t"].values) == [f"{m:02d}" for m in range(1, 13)]
    # January 2019 (1) and 2020 (13): mean 7; December 2019 (12) and 2020 (24): mean 18 (2018 and 2021 outside)
    assert normals.sel(t="01").values[0, 0] == 7.0 and normals.sel(t="12").values[0, 0] == 18.0
    assert normals.sel(t="01").values[0, 1] == 1007.0
    assert cubes.is_cube(normals)


def test_climatological_normal_season_takes_the_december_before_and_not_the_last():
    normals = run(node("climatological_normal", data="$c", period="season", climatology_period=["2019", "2020"]),
                  c=monthly_cube())
    assert list(normals["t"].values) == ["djf", "mam", "jja", "son"]
    # djf 2019: Dec 2018 (0), Jan (1), Feb (2); djf 2020: Dec 2019 (12), Jan (13), Feb (14); Dec 2020 excluded
    assert normals.sel(t="djf").values[0, 0] == pytest.approx(np.mean([0, 1, 2, 12, 13, 14]))


def test_anomaly_subtracts_the_normal_of_each_period():
    cube = monthly_cube()
    normals = run(node("climatological_normal", data="$c", period="month", climatology_period=["2019", "2020"]),
                  c=cube)
    by_instant = run(node("anomaly", data="$c", normals="$n", period="month"), c=cube, n=normals)
    assert by_instant.sel(t="2019-01-01").values[0, 0] == 1 - 7.0
    assert by_instant.sel(t="2021-12-01").values[0, 1] == (36 + 1000) - (18 + 1000)
    labeled = cube.isel(t=slice(0, 3)).assign_coords(t=np.array(["2018-12", "2019-01", "2019-02"], dtype=object))
    by_label = run(node("anomaly", data="$c", normals="$n", period="month"), c=labeled, n=normals)
    np.testing.assert_allclose(by_label.values[:, 0, 0], [0 - 18.0, 1 - 7.0, 2 - 8.0])


def test_anomaly_without_a_normal_for_a_period_is_a_client_error():
    cube = monthly_cube()
    normals = run(node("climatological_normal", data="$c", period="season", climatology_period=["2019", "2020"]),
                  c=cube)
    with pytest.raises(Exception, match="no normal") as error:
        run(node("anomaly", data="$c", normals="$n", period="month"), c=cube, n=normals)
    assert error.value.status_code == 400


# --- reshaping ----------------------------------------------------------------------------------------

def test_trim_cube_drops_empty_edges_of_x_and_y_and_empty_time_steps():
    data = np.full((3, 3, 4), NAN)
    data[0, 1, 1:3] = 1.0
    data[2, 1, 1] = 2.0  # the x column 2 is empty at t=2 but not at t=0: kept
    cube = cubes.make_cube(data, grid=small_grid(4, 3), times=list(pd.date_range("2022-01-01", periods=3)))
    trimmed = run(node("trim_cube", data="$c"), c=cube)
    assert trimmed.shape == (2, 1, 2)
    assert list(trimmed["t"].values) == list(cube["t"].values[[0, 2]])
    np.testing.assert_allclose(trimmed["x"].values, cube["x"].values[1:3])
    assert cubes.grid_of(trimmed).resolution == (10.0, 10.0)


def test_flatten_and_unflatten_dimensions_round_trip():
    cube = series(["2020-01-01", "2021-01-01"], [1, 2])
    bands = cube.expand_dims(bands=["B1", "B2"]).transpose("t", "bands", "y", "x").copy()
    bands[:, 1] += 0.5
    flat = run(node("flatten_dimensions", data="$c", dimensions=["t", "bands"], target_dimension="tb"), c=bands)
    assert flat.dims == ("tb", "y", "x")
    assert list(flat["tb"].values) == ["2020-01-01T00:00:00Z~B1", "2020-01-01T00:00:00Z~B2",
                                       "2021-01-01T00:00:00Z~B1", "2021-01-01T00:00:00Z~B2"]
    np.testing.assert_allclose(flat.values[:, 0, 0], [1, 1.5, 2, 2.5])
    back = run(node("unflatten_dimension", data="$c", dimension="tb", target_dimensions=["year", "band"]), c=flat)
    assert back.dims == ("year", "band", "y", "x") and list(back["band"].values) == ["B1", "B2"]
    np.testing.assert_allclose(back.values, bands.values)
    with pytest.raises(Exception) as error:
        run(node("flatten_dimensions", data="$c", dimensions=["t", "bands"], target_dimension="x"), c=bands)
    assert error.value.code == "TargetDimensionExists"


def test_reduce_spatial_reduces_all_pixels_of_each_slice():
    cube = series(["2020-01-01", "2020-01-02"], [1, 2], width=3, height=2)
    reduced = run(node("reduce_spatial", data="$c", reducer=callback("max", data="$data")), c=cube)
    assert reduced.dims == ("t",)
    np.testing.assert_allclose(reduced.values, [5001, 5002])


@pytest.mark.parametrize(("boundary", "align", "expected_x", "expected"), [
    ("pad", "upper-left", [600010.0, 600030.0], [[1.0, 2.5]]),  # columns [0, 1] and [2, padding]
    ("trim", "upper-left", [600010.0], [[1.0]]),  # columns [0, 1]
    ("trim", "upper-right", [600020.0], [[2.0]]),  # columns [1, 2]
])
def test_aggregate_spatial_window(boundary, align, expected_x, expected):
    cube = cubes.make_cube(np.array([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]]), grid=small_grid(3, 2))
    result = run(node("aggregate_spatial_window", data="$c", reducer=callback("mean", data="$data"), size=[2, 2],
                      boundary=boundary, align=align), c=cube)
    np.testing.assert_allclose(result["x"].values, expected_x)
    np.testing.assert_allclose(result["y"].values, [4999990.0])
    np.testing.assert_allclose(result.values, expected)
    assert cubes.grid_of(result).resolution == (20.0, 20.0)


def test_resample_cube_temporal_nearest_with_ties_to_the_earlier():
    data = series(["2020-01-01", "2020-01-03", "2020-01-10"], [1, NAN, 10])
    target = series(["2020-01-02", "2020-01-04", "2020-01-09"], [0, 0, 0])
    nearest = run(node("resample_cube_temporal", data="$d", target="$t"), d=data, t=target)
    assert list(nearest["t"].values) == list(target["t"].values)
    np.testing.assert_allclose(nearest.values[:, 0, 0], [1, NAN, 10])  # 01-02: tie 01-01/01-03 -> 01-01
    valid = run(node("resample_cube_temporal", data="$d", target="$t", valid_within=2), d=data, t=target)
    np.testing.assert_allclose(valid.values[:, 0, 0], [1, NAN, 10])  # 01-04: 01-03 is NaN, 01-01 too far
    wider = run(node("resample_cube_temporal", data="$d", target="$t", valid_within=3), d=data, t=target)
    np.testing.assert_allclose(wider.values[:, 0, 0], [1, 1, 10])


# --- array processes inside callbacks over a cube dimension ----------------------------------------------

def apply_over_t(cube, process_id, **arguments):
    return run(node("apply_dimension", data="$c", dimension="t", process=callback(process_id, **arguments)), c=cube)


def test_cumulative_processes_over_time():
    cube = series(pd.date_range("2020-01-01", periods=4), [1, 3, NAN, 2])
    np.testing.assert_allclose(apply_over_t(cube, "cumsum", data="$data").values[:, 0, 0], [1, 4, NAN, 6])
    np.testing.assert_allclose(apply_over_t(cube, "cummax", data="$data", ignore_nodata=False).values[:, 0, 0],
                               [1, 3, NAN, NAN])
    assert list(apply_over_t(cube, "cumsum", data="$data")["t"].values) == list(cube["t"].values)


def test_array_apply_filter_and_order_over_time():
    cube = series(pd.date_range("2020-01-01", periods=4), [4, -1, NAN, 2], width=1)
    graph = {"process_graph": {
        "i": {"process_id": "multiply", "arguments": {"x": {"from_parameter": "index"}, "y": 10}},
        "a": {"process_id": "add", "arguments": {"x": {"from_parameter": "x"}, "y": {"from_node": "i"}},
              "result": True}}}
    applied = apply_over_t(cube, "array_apply", data="$data", process=graph)
    np.testing.assert_allclose(applied.values[:, 0, 0], [4, 9, NAN, 32])
    positive = callback("gt", x="$x", y=0)
    filtered = apply_over_t(cube, "array_filter", data="$data", condition=positive)
    np.testing.assert_allclose(filtered.values[:, 0, 0], [4, 2])  # the pixel's kept values, padded to 2
    np.testing.assert_allclose(apply_over_t(cube, "order", data="$data").values[:, 0, 0], [1, 3, 0])
    np.testing.assert_allclose(apply_over_t(cube, "order", data="$data", nodata=True).values[:, 0, 0],
                               [1, 3, 0, 2])


def test_inspect_logs_a_summary_and_passes_the_data_on():
    reporter = RecordingReporter()
    cube = series(["2020-01-01", "2020-01-02"], [NAN, 5])
    result = run({"i": {"process_id": "inspect", "arguments": {"data": {"from_parameter": "c"}, "message": "here",
                                                               "level": "warning"}, "result": True}},
                 EvalEnv(reporter=reporter), c=cube)
    assert result is cube
    [entry] = [log for log in reporter.logs if log["code"] == "User"]
    assert entry["message"] == "here" and entry["level"] == "warning" and entry["code"] == "User"
    assert entry["path"] == [{"node_id": "i", "process_id": "inspect"}]
    assert entry["data"]["nodata"] == 2 and entry["data"]["max"] == 1005.0
    assert [d["name"] for d in entry["data"]["dimensions"]] == ["t", "y", "x"]


# --- fit_curve, predict_curve ---------------------------------------------------------------------------

LINE = {"process_graph": {
    "a": {"process_id": "array_element", "arguments": {"data": {"from_parameter": "parameters"}, "index": 0}},
    "b": {"process_id": "array_element", "arguments": {"data": {"from_parameter": "parameters"}, "index": 1}},
    "bx": {"process_id": "multiply", "arguments": {"x": {"from_node": "b"}, "y": {"from_parameter": "x"}}},
    "y": {"process_id": "add", "arguments": {"x": {"from_node": "a"}, "y": {"from_node": "bx"}}, "result": True}}}
DAY = 86400.0


def test_fit_curve_on_a_labeled_array():
    from tests.conformance.openeo_json5 import labeled_array

    data = labeled_array([0, 1, 2, 3], [1.0, 3.0, None, 7.0])  # y = 1 + 2x, one no-data
    fitted = run(node("fit_curve", data="$d", parameters=[0, 0], function=LINE), d=data)
    assert fitted == pytest.approx([1.0, 2.0], abs=1e-6)


def test_fit_curve_per_pixel_over_time_and_predict_curve():
    times = pd.date_range("2020-01-01", periods=5, freq="D")
    days = np.arange(5.0)
    # pixel 0: y = 10 + 3 · day; pixel 1: y = 1000 + 3 · day + 1000 (series adds pixel * 1000); one gap
    cube = series(times, 10 + 3 * days)
    cube[2, 0, 1] = NAN
    fitted = run(node("apply_dimension", data="$c", dimension="t",
                      process=callback("fit_curve", data="$data", parameters=[0, 0], function=LINE)), c=cube)
    assert fitted.sizes["t"] == 2
    epoch_day = times[0].value / 1e9 / DAY  # x is in seconds since 1970
    slope = fitted.values[1, 0, :] * DAY
    intercept = fitted.values[0, 0, :] + slope * epoch_day
    np.testing.assert_allclose(slope, [3, 3], rtol=1e-6)
    np.testing.assert_allclose(intercept, [10, 1010], rtol=1e-6)
    predicted = run(node("predict_curve", parameters="$p", function=LINE, dimension="t",
                         labels=["2020-01-11", "2020-01-21"]), p=fitted)
    assert list(predicted["t"].values) == list(pd.DatetimeIndex(["2020-01-11", "2020-01-21"]).values)
    np.testing.assert_allclose(predicted.values[:, 0, :], [[40, 1040], [70, 1070]], rtol=1e-6)


# --- apply_polygon -------------------------------------------------------------------------------------

def _polygon(*corners):
    return {"type": "Polygon", "coordinates": [[*map(list, corners), list(corners[0])]]}


def test_apply_polygon_processes_each_polygon_with_outside_pixels_masked():
    # pixel centres: x = 600005 + 10 col, y = 4999995 - 10 row
    cube = cubes.make_cube(np.arange(12.0).reshape(3, 4), grid=small_grid(4, 3))
    # a triangle holding the centres of (1, 0), (2, 0) and (2, 1): its window is rows 1-2, columns 0-1
    triangle = _polygon((600000, 5000000), (600000, 4999970), (600020, 4999970))
    square = _polygon((600031, 4999971), (600039, 4999971), (600039, 4999979), (600031, 4999979))  # (2, 3)
    collection = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:32632"}},
                  "features": [{"type": "Feature", "geometry": g, "properties": {}} for g in (triangle, square)]}
    # each sub-cube minus its maximum along y: the masked pixels (mask_value 100) take part
    graph = {"process_graph": {
        "m": {"process_id": "reduce_dimension", "arguments": {"data": {"from_parameter": "data"}, "dimension": "y",
                                                              "reducer": callback("max", data="$data")}},
        "s": {"process_id": "subtract", "arguments": {"x": {"from_parameter": "data"}, "y": {"from_node": "m"}},
              "result": True}}}
    result = run(node("apply_polygon", data="$c", geometries=collection, process=graph, mask_value=100), c=cube)
    expected = np.full((3, 4), NAN)
    expected[1, 0], expected[2, 0], expected[2, 1] = 4 - 8, 8 - 8, 9 - 100  # (1, 1) is masked: 100
    expected[2, 3] = 0.0
    np.testing.assert_allclose(result.values, expected)
    with pytest.raises(Exception) as error:
        run(node("apply_polygon", data="$c", geometries={**collection, "features": collection["features"] * 2},
                 process=graph), c=cube)
    assert error.value.code == "GeometriesOverlap"


# --- array and date details the official tests leave out ------------------------------------------------

def test_array_modify_keeps_labels_only_when_both_sides_are_labeled():
    from tests.conformance.openeo_json5 import labeled_array

    data = labeled_array(["B01", "B02", "B03"], [1.0, 2.0, 3.0])
    replaced = run(node("array_modify", data="$d", values="$v", index=1, length=1), d=data,
                   v=labeled_array(["B08"], [8.0]))
    assert list(replaced.labels.values) == ["B01", "B08", "B03"] and list(replaced.values) == [1, 8, 3]
    assert run(node("array_modify", data="$d", values=[8], index=1, length=1), d=data) == [1, 8, 3]
    with pytest.raises(Exception) as error:
        run(node("array_modify", data="$d", values="$v", index=0), d=data, v=labeled_array(["B03"], [0.0]))
    assert error.value.code == "ArrayLabelConflict"


def test_date_difference_in_calendar_months_and_date_shift_keeps_the_offset():
    assert run(node("date_difference", date1="2020-01-31", date2="2020-02-29", unit="month")) == 1.0
    assert run(node("date_difference", date1="2020-01-01", date2="2020-01-16T12:00:00Z", unit="month")) == 0.5
    assert run(node("date_difference", date1="2021-01-01", date2="2020-01-01", unit="year")) == -1.0
    assert run(node("date_shift", date="2021-03-31T10:00:00-02:30", value=1, unit="month")) == \
        "2021-04-30T10:00:00-02:30"
