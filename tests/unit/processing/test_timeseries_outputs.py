"""aggregate_spatial results as the openeo client and pandas/xarray read them: the time series JSON
(`openeo.rest.conversions.timeseries_json_to_pandas`), CSV and CF discrete-sampling-geometry netCDF,
from real runs of the engine over the demo collection, against numpy."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import stratus_processing.processes  # noqa: F401  (registers the processes)
import xarray as xr
from openeo.rest.conversions import timeseries_json_to_pandas
from stratus.file_formats import FILE_FORMATS, find_format
from stratus_processing import cube as cubes
from stratus_processing.errors import FormatUnsuitableException
from stratus_processing.graph import evaluate_graph

from tests.unit.processing.processing_testkit import BOLZANO_EXTENT, JUNE_2022
from tests.unit.processing.test_multi_statistics import STATISTICS, numpy_statistics, statistics_reducer
from tests.unit.processing.test_spatial_processes import reducer, utm_box

# Pixel windows (rows, cols) of the boxes; the third box lies outside the data: no-data everywhere.
WINDOWS = [(slice(2, 6), slice(3, 9)), (slice(40, 45), slice(60, 70))]


def load_node(bands):
    return {"process_id": "load_collection", "arguments": {
        "id": "sentinel-2-l2a-demo", "spatial_extent": BOLZANO_EXTENT, "temporal_extent": JUNE_2022,
        "bands": bands}}


def loaded(env, bands):
    return evaluate_graph({"load": {**load_node(bands), "result": True}}, env)


def boxes(cube, windows=WINDOWS, outside=True):
    """Boxes around the pixel centres of each window (EPSG:4326 GeoJSON), plus one far outside."""
    grid = cubes.grid_of(cube)
    xs, ys, res = grid.x_coords(), grid.y_coords(), grid.resolution[0]
    geometries = [utm_box(xs[c.start] - 0.4 * res, ys[r.stop - 1] - 0.4 * res, xs[c.stop - 1] + 0.4 * res,
                          ys[r.start] + 0.4 * res) for r, c in windows]
    if outside:
        geometries.append(utm_box(500000, 4000000, 500100, 4000100))
    return {"type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": {}, "geometry": g} for g in geometries]}


def run_and_save(env, result_store, bands, fmt, the_reducer, windows=WINDOWS, outside=True):
    """Evaluate load → aggregate_spatial → save_result; the saved file's path and the loaded cube."""
    cube = loaded(env, bands)
    graph = {
        "load": load_node(bands),
        "agg": {"process_id": "aggregate_spatial", "arguments": {
            "data": {"from_node": "load"}, "geometries": boxes(cube, windows, outside), "reducer": the_reducer}},
        "save": {"process_id": "save_result", "result": True,
                 "arguments": {"data": {"from_node": "agg"}, "format": fmt}},
    }
    evaluate_graph(graph, env)
    return result_store.path_of(result_store.assets[-1].key), cube


def expected_means(cube, windows=WINDOWS):
    """(geometry, t, band) means of the windows with numpy; NaN where a window has no valid pixel."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.stack([np.nanmean(cube.values[:, :, r, c], axis=(-2, -1)) for r, c in windows])


def dates_of(cube):
    return [cubes.isoformat_utc(pd.Timestamp(t).to_pydatetime()) for t in cube[cubes.T].values]


# --- JSON: timeseries_json_to_pandas -------------------------------------------------------------

def test_multi_band_time_series_reads_with_the_openeo_client(demo_env, result_store):
    path, cube = run_and_save(demo_env, result_store, ["B04", "B08"], "JSON", reducer("mean"))
    document = json.loads(path.read_text())
    expected = expected_means(cube)
    assert list(document) == dates_of(cube) and len(document) >= 2

    frame = timeseries_json_to_pandas(document)

    assert list(frame.index) == dates_of(cube)
    assert list(frame.columns) == [(p, b) for p in range(3) for b in range(2)]
    for polygon in range(2):
        for band in range(2):
            np.testing.assert_allclose(frame[(polygon, band)].to_numpy(), expected[polygon, :, band], rtol=1e-12)
    assert frame[2].isna().all().all()  # the box outside the data: null, read as NaN
    assert timeseries_json_to_pandas(path).equals(frame)  # the client also reads the downloaded file


def test_single_band_single_geometry_collapses_to_a_series(demo_env, result_store):
    path, cube = run_and_save(demo_env, result_store, ["B08"], "JSON", reducer("mean"), WINDOWS[:1], outside=False)

    series = timeseries_json_to_pandas(json.loads(path.read_text()))

    assert isinstance(series, pd.Series) and list(series.index) == dates_of(cube)
    np.testing.assert_allclose(series.to_numpy(), expected_means(cube, WINDOWS[:1])[0, :, 0], rtol=1e-12)


def test_single_date_with_nodata_per_polygon_index(demo_env, result_store):
    cube = loaded(demo_env, ["B04"])
    first_date = str(pd.Timestamp(cube[cubes.T].values[0]).date())
    graph = {
        "load": {"process_id": "load_collection", "arguments": {
            "id": "sentinel-2-l2a-demo", "spatial_extent": BOLZANO_EXTENT, "bands": ["B04"],
            "temporal_extent": [first_date, str((pd.Timestamp(first_date) + pd.Timedelta(days=1)).date())]}},
        "agg": {"process_id": "aggregate_spatial", "arguments": {
            "data": {"from_node": "load"}, "geometries": boxes(cube), "reducer": reducer("max")}},
        "save": {"process_id": "save_result", "result": True, "arguments": {"data": {"from_node": "agg"},
                                                                             "format": "JSON"}},
    }
    evaluate_graph(graph, demo_env)
    document = json.loads(result_store.path_of(result_store.assets[-1].key).read_text())

    frame = timeseries_json_to_pandas(document, index="polygon")

    assert list(document) == dates_of(cube)[:1] and document[dates_of(cube)[0]][2] == [None]
    expected = [np.nanmax(cube.values[0, 0, r, c]) for r, c in WINDOWS]
    assert list(frame.index) == [0, 1, 2] and list(frame.columns) == dates_of(cube)[:1]
    np.testing.assert_allclose(frame.iloc[:2, 0].to_numpy(), expected, rtol=1e-12)
    assert np.isnan(frame.iloc[2, 0])


def test_multi_statistics_bands_read_with_the_openeo_client(demo_env, result_store):
    path, cube = run_and_save(demo_env, result_store, ["B04", "B08"], "JSON", statistics_reducer())

    frame = timeseries_json_to_pandas(json.loads(path.read_text()))

    # bands in label order: B04_mean, B04_sd, B04_median, B04_count, B08_mean, ...
    for polygon, (rows, cols) in enumerate(WINDOWS):
        pixels = cube.values[:, :, rows, cols].reshape(cube.sizes["t"], 2, -1)
        for b in range(2):
            for s, expected in enumerate(numpy_statistics(pixels[:, b], axis=-1)):
                column = frame[(polygon, b * len(STATISTICS) + s)].to_numpy()
                np.testing.assert_allclose(column, expected, rtol=1e-9, equal_nan=True)
    assert frame[2].isna().all().all()


# --- CSV and netCDF ------------------------------------------------------------------------------

def test_csv_has_geopyspark_layout_and_reads_with_pandas(demo_env, result_store):
    path, cube = run_and_save(demo_env, result_store, ["B04", "B08"], "csv", reducer("mean"))
    assert result_store.assets[-1].media_type == "text/csv" and path.name == "result.csv"

    table = pd.read_csv(path)

    assert list(table.columns) == ["date", "feature_index", "B04", "B08"]
    dates = dates_of(cube)
    assert len(table) == 3 * len(dates) and list(table.date.unique()) == dates
    expected = expected_means(cube)
    for (date, feature), row in table.set_index(["date", "feature_index"]).iterrows():
        if feature == 2:
            assert row.isna().all()
        else:
            np.testing.assert_allclose(row.to_numpy(), expected[feature, dates.index(date)], rtol=1e-12)


def test_netcdf_of_a_vector_cube_is_a_cf_time_series_dsg(demo_env, result_store):
    path, cube = run_and_save(demo_env, result_store, ["B04", "B08"], "netCDF", reducer("mean"))
    assert result_store.assets[-1].media_type == "application/netcdf" and path.name == "result.nc"

    with xr.open_dataset(path) as dataset:
        assert dataset.attrs["featureType"] == "timeSeries" and dataset.attrs["Conventions"] == "CF-1.8"
        assert dataset["B04"].dims == ("feature", "t") and set(dataset.data_vars) == {"B04", "B08"}
        assert dataset["feature_id"].attrs["cf_role"] == "timeseries_id"
        assert {"lat", "lon", "feature_id"} <= set(dataset["B04"].encoding["coordinates"].split())
        assert dataset["t"].attrs["standard_name"] == "time"
        np.testing.assert_array_equal(dataset["t"].values, cube[cubes.T].values)
        assert 46 < dataset["lat"].values[0] < 47 and 11 < dataset["lon"].values[0] < 12
        expected = expected_means(cube).astype(np.float32)
        for b, band in enumerate(["B04", "B08"]):
            np.testing.assert_array_equal(dataset[band].values[:2], expected[:, :, b])
            assert np.isnan(dataset[band].values[2]).all()
    with xr.open_dataset(path, decode_times=False) as raw:
        assert raw["t"].attrs["units"].startswith("seconds since 1970-01-01")


def test_vector_cube_without_time_as_netcdf_points_and_csv(demo_env, result_store):
    cube = loaded(demo_env, ["B08"])
    graph = {
        "load": load_node(["B08"]),
        "red": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "load"}, "dimension": "t", "reducer": reducer("mean")}},
        "agg": {"process_id": "aggregate_spatial", "arguments": {
            "data": {"from_node": "red"}, "geometries": boxes(cube), "reducer": reducer("mean")}},
    }
    for fmt in ("netCDF", "CSV"):
        evaluate_graph({**graph, "save": {"process_id": "save_result", "result": True,
                                          "arguments": {"data": {"from_node": "agg"}, "format": fmt}}}, demo_env)
    netcdf_path, csv_path = (result_store.path_of(a.key) for a in result_store.assets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = [np.nanmean(np.nanmean(cube.values[:, 0], axis=0)[r, c]) for r, c in WINDOWS]

    with xr.open_dataset(netcdf_path) as dataset:
        assert dataset.attrs["featureType"] == "point" and dataset["B08"].dims == ("feature",)
        np.testing.assert_allclose(dataset["B08"].values[:2], expected, rtol=1e-6)
    table = pd.read_csv(csv_path)
    assert list(table.columns) == ["feature_index", "B08"]
    np.testing.assert_allclose(table.B08.to_numpy()[:2], expected, rtol=1e-12)
    assert np.isnan(table.B08[2])


def test_formats_offer_csv_and_netcdf_for_vector_cubes(demo_env):
    assert find_format("csv") == "CSV" and "vector" in FILE_FORMATS["output"]["CSV"]["gis_data_types"]
    assert "vector" in FILE_FORMATS["output"]["netCDF"]["gis_data_types"]
    raster = loaded(demo_env, ["B04"])
    with pytest.raises(FormatUnsuitableException, match="CSV stores vector data cubes"):
        evaluate_graph({"s": {"process_id": "save_result", "result": True, "arguments": {
            "data": {"from_parameter": "v"}, "format": "CSV"}}}, demo_env, arguments={"v": raster})
