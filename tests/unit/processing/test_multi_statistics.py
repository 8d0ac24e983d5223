"""Several statistics in one reducer (`array_create([mean(data), sd(data), median(data), count(data)])`)
in reduce_dimension, aggregate_spatial and apply_dimension into bands, against numpy."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import shapely
import stratus_processing.processes  # noqa: F401  (registers the processes)
from stratus.errors import ProcessParameterInvalidException
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.graph import evaluate_graph

from tests.unit.processing.processing_testkit import small_grid, utc
from tests.unit.processing.test_spatial_processes import utm_polygon

WEST, NORTH = 600000.0, 5000000.0
STATISTICS = ["mean", "sd", "median", "count"]


@pytest.fixture
def cube():
    """(t: 4, bands: 2, y: 6, x: 7) with no-data, one pixel without any valid date in B04."""
    rng = np.random.default_rng(7)
    values = rng.uniform(0, 1, (4, 2, 6, 7))
    values[rng.uniform(0, 1, values.shape) < 0.2] = np.nan
    values[:, 0, 2, 3] = np.nan
    return cubes.make_cube(values, grid=small_grid(7, 6, west=WEST, north=NORTH),
                           times=[utc(2022, 6, 1 + 5 * i) for i in range(4)], bands=["B04", "B08"],
                           common_names=["red", "nir"])


def statistics_reducer(*extra_nodes):
    nodes = {name: {"process_id": name, "arguments": {"data": {"from_parameter": "data"}}} for name in STATISTICS}
    nodes.update(extra_nodes)
    nodes["all"] = {"process_id": "array_create", "result": True,
                    "arguments": {"data": [{"from_node": name} for name in nodes]}}
    return {"process_graph": nodes}


def numpy_statistics(values, axis):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return [np.nanmean(values, axis=axis), np.nanstd(values, axis=axis, ddof=1),
                np.nanmedian(values, axis=axis), np.sum(~np.isnan(values), axis=axis).astype(float)]


def run(node, **parameters):
    return evaluate_graph({"n": {**node, "result": True}}, EvalEnv(), arguments=parameters)


def test_reduce_time_with_several_statistics_gives_a_band_per_band_and_statistic(cube):
    result = run({"process_id": "reduce_dimension", "arguments": {
        "data": {"from_parameter": "cube"}, "dimension": "t", "reducer": statistics_reducer()}}, cube=cube)

    assert result.dims == ("bands", "y", "x")
    assert list(result.bands.values) == [f"{b}_{s}" for b in ("B04", "B08") for s in STATISTICS]
    for b, band in enumerate(("B04", "B08")):
        for statistic, expected in zip(STATISTICS, numpy_statistics(cube.values[:, b], axis=0), strict=True):
            np.testing.assert_allclose(result.sel(bands=f"{band}_{statistic}").values, expected,
                                       rtol=1e-12, equal_nan=True)
    assert np.isnan(result.sel(bands="B04_mean").values[2, 3])
    assert result.sel(bands="B04_count").values[2, 3] == 0


def test_reduce_bands_with_several_statistics_names_the_bands_by_statistic(cube):
    result = run({"process_id": "reduce_dimension", "arguments": {
        "data": {"from_parameter": "cube"}, "dimension": "bands", "reducer": statistics_reducer()}}, cube=cube)

    assert result.dims == ("t", "bands", "y", "x")
    assert list(result.bands.values) == STATISTICS
    for statistic, expected in zip(STATISTICS, numpy_statistics(cube.values, axis=1), strict=True):
        np.testing.assert_allclose(result.sel(bands=statistic).values, expected, rtol=1e-12, equal_nan=True)


def test_a_single_quantile_in_the_array_counts_as_one_statistic(cube):
    q90 = ("q90", {"process_id": "quantiles", "arguments": {"data": {"from_parameter": "data"},
                                                            "probabilities": [0.9]}})
    result = run({"process_id": "reduce_dimension", "arguments": {
        "data": {"from_parameter": "cube"}, "dimension": "t", "reducer": statistics_reducer(q90)}}, cube=cube)

    assert list(result.bands.values)[:5] == ["B04_mean", "B04_sd", "B04_median", "B04_count", "B04_quantiles"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanquantile(cube.values[:, 1], 0.9, axis=0)
    np.testing.assert_allclose(result.sel(bands="B08_quantiles").values, expected, rtol=1e-12, equal_nan=True)


def test_a_reducer_returning_the_sorted_values_is_still_invalid(cube):
    # only array_create, array_concat, extrema and quantiles make statistics
    keep = {"process_graph": {"a": {"process_id": "sort", "result": True,
                                    "arguments": {"data": {"from_parameter": "data"}}}}}
    with pytest.raises(ProcessParameterInvalidException, match="single value per cell"):
        run({"process_id": "reduce_dimension", "arguments": {
            "data": {"from_parameter": "cube"}, "dimension": "t", "reducer": keep}}, cube=cube)


def test_aggregate_spatial_with_several_statistics(cube):
    corners = [(600012.0, 4999948.0), (600047.0, 4999948.0), (600047.0, 4999987.0), (600012.0, 4999987.0)]
    geometries = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": utm_polygon(*corners)}]}

    result = run({"process_id": "aggregate_spatial", "arguments": {
        "data": {"from_parameter": "cube"}, "geometries": geometries, "reducer": statistics_reducer()}}, cube=cube)

    assert result.dims == ("geometry", "t", "bands")
    assert list(result.bands.values) == [f"{b}_{s}" for b in ("B04", "B08") for s in STATISTICS]
    grid = cubes.grid_of(cube)
    xs, ys = np.meshgrid(grid.x_coords(), grid.y_coords())
    inside = shapely.contains_xy(shapely.Polygon(corners), xs, ys)
    assert 4 <= inside.sum() < inside.size
    for b, band in enumerate(("B04", "B08")):
        for statistic, expected in zip(STATISTICS, numpy_statistics(cube.values[:, b][..., inside], axis=-1),
                                       strict=True):
            np.testing.assert_allclose(result.sel(bands=f"{band}_{statistic}").values[0], expected,
                                       rtol=1e-12, equal_nan=True)


def test_apply_dimension_statistics_over_time_into_bands_as_the_docs_do(cube):
    # the client docs: apply_dimension(dimension="t", target_dimension="bands", process=array_create([...]))
    # then rename_labels("bands", [f"{b}_{s}" ...]) on the enumerated labels
    graph = {
        "stats": {"process_id": "apply_dimension", "arguments": {
            "data": {"from_parameter": "cube"}, "dimension": "t", "target_dimension": "bands",
            "process": statistics_reducer()}},
        "names": {"process_id": "rename_labels", "result": True, "arguments": {
            "data": {"from_node": "stats"}, "dimension": "bands",
            "target": [f"{b}_{s}" for b in ("B04", "B08") for s in STATISTICS]}},
    }
    result = evaluate_graph(graph, EvalEnv(), arguments={"cube": cube})

    assert result.dims == ("bands", "y", "x")
    for b, band in enumerate(("B04", "B08")):
        for statistic, expected in zip(STATISTICS, numpy_statistics(cube.values[:, b], axis=0), strict=True):
            np.testing.assert_allclose(result.sel(bands=f"{band}_{statistic}").values, expected,
                                       rtol=1e-12, equal_nan=True)
