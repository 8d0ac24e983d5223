"""Issue 3's acceptance workflow, as a batch job through the local system with the real client:

load a box around Bolzano → filter_bbox → mask clouds with the SCL band → NDVI →
aggregate_temporal_period (month, mean) → apply(linear_scale_range -1..1 → 0..255) →
aggregate_spatial (mean) over two polygons → JSON; checked against numpy and shapely on the source COGs.
"""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from openeo.rest.conversions import timeseries_json_to_pandas
from pyproj import Transformer
from shapely.geometry import Point, Polygon, mapping

from tests.e2e.test_openeo_client_job import COLLECTION, wait_for

pytestmark = pytest.mark.e2e

LOAD_BOX = {"west": 679000, "east": 681000, "south": 5150500, "north": 5152500, "crs": 32632}
FILTER_BOX = {"west": 679720, "east": 680680, "south": 5151080, "north": 5151920, "crs": 32632}
MONTHS = {"2022-06": ("2022-06-01", "2022-07-01"), "2022-07": ("2022-07-01", "2022-08-01")}
CLOUDY_SCL = (3, 8, 9)
# Two fields inside the filter box, corners off the pixel centres so no centre lies on an edge.
UTM_POLYGONS = [
    [(679753.3, 5151103.3), (680103.3, 5151103.3), (680103.3, 5151453.3), (679753.3, 5151453.3)],
    [(680203.3, 5151503.3), (680653.3, 5151503.3), (680453.3, 5151903.3), (680203.3, 5151853.3)],
]
TO_WGS84 = Transformer.from_crs(32632, 4326, always_xy=True)
TO_UTM = Transformer.from_crs(4326, 32632, always_xy=True)


def wgs84_polygons():
    return [Polygon([TO_WGS84.transform(x, y) for x, y in ring]) for ring in UTM_POLYGONS]


def read_window(s3, href):
    bucket, _, key = href.removeprefix("s3://").partition("/")
    with rasterio.MemoryFile(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) as memfile, memfile.open() as src:
        window = rasterio.windows.from_bounds(FILTER_BOX["west"], FILTER_BOX["south"], FILTER_BOX["east"],
                                              FILTER_BOX["north"], src.transform)
        return src.read(1, window=window.round_offsets().round_lengths())


def expected_zonal_means(s3, bucket="stratus-data"):
    """Independent reference: numpy on the COGs, shapely for the pixel-centre-in-polygon rule."""
    prefix = f"stac/collections/{COLLECTION}/items/"
    items = [json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
             for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    width = (FILTER_BOX["east"] - FILTER_BOX["west"]) // 10
    height = (FILTER_BOX["north"] - FILTER_BOX["south"]) // 10
    xs = FILTER_BOX["west"] + 5 + 10 * np.arange(width)
    ys = FILTER_BOX["north"] - 5 - 10 * np.arange(height)
    # the engine reprojects the polygons' vertices into the cube's CRS: do the same
    utm_polygons = [Polygon([TO_UTM.transform(x, y) for x, y in p.exterior.coords]) for p in wgs84_polygons()]
    inside = [np.array([[p.contains(Point(x, y)) for x in xs] for y in ys]) for p in utm_polygons]
    result = {}
    for month, (start, end) in MONTHS.items():
        ndvis = []
        for item in items:
            when = item["properties"]["datetime"][:10]
            if item["properties"].get("proj:epsg") != 32632 or not (start <= when < end):
                continue
            red, nir = (read_window(s3, item["assets"][b]["href"]).astype("float64") for b in ("B04", "B08"))
            scl = np.repeat(np.repeat(read_window(s3, item["assets"]["SCL"]["href"]), 2, axis=0), 2, axis=1)
            scl = scl[:height, :width]
            valid = (red > 0) & (nir > 0) & ~np.isin(scl, CLOUDY_SCL)
            red, nir = red * 0.0001, nir * 0.0001
            with np.errstate(invalid="ignore", divide="ignore"):
                ndvi = np.where(valid, (nir - red) / (nir + red), np.nan)
            ndvis.append(ndvi)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # pixels cloudy on every date stay no-data
            monthly = np.nanmean(np.stack(ndvis), axis=0)
        scaled = (np.clip(monthly, -1, 1) + 1) / 2 * 255
        result[month] = [float(np.nanmean(scaled[mask])) for mask in inside]
    return result


def monthly_zonal_statistics(connection):
    """The workflow expressed with the client."""
    cube = connection.load_collection(COLLECTION, spatial_extent=LOAD_BOX, temporal_extent=["2022-06-01", "2022-08-01"],
                                      bands=["B04", "B08", "SCL"])
    cube = cube.filter_bbox(**{k: v for k, v in FILTER_BOX.items()})
    scl = cube.band("SCL")
    clouds = (scl == 3) | (scl == 8) | (scl == 9)
    masked = cube.filter_bands(["B04", "B08"]).mask(clouds)
    ndvi = masked.ndvi(red="B04", nir="B08")
    monthly = ndvi.aggregate_temporal_period(period="month", reducer="mean")
    scaled = monthly.apply(lambda x: x.linear_scale_range(-1, 1, 0, 255))
    geometries = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": f"field-{i}"}, "geometry": mapping(polygon)}
        for i, polygon in enumerate(wgs84_polygons())]}
    return scaled.aggregate_spatial(geometries=geometries, reducer="mean")


def test_monthly_ndvi_zonal_statistics(connection, s3, tmp_path):
    # Given the workflow expressed with the client
    stats = monthly_zonal_statistics(connection)

    # When it runs as a batch job
    started = time.monotonic()
    job = stats.create_job(out_format="JSON", title="monthly zonal NDVI")
    job.start()
    status, _ = wait_for(job, timeout=90)
    assert status == "finished", [entry.message for entry in job.logs()]
    print(f"\nmonthly zonal workflow: {time.monotonic() - started:.1f} s")

    # Then the JSON holds, per polygon and month, the mean of the scaled monthly NDVI
    path = job.get_results().download_file(tmp_path / "stats.json")
    document = json.loads(path.read_text())
    # (the time series layout of openeo-geopyspark-driver: {month: [[value per band] per polygon]})
    assert all(len(polygons) == 2 and all(len(bands) == 1 for bands in polygons) for polygons in document.values())
    labels = list(document)
    data = np.array([[bands[0] for bands in document[month]] for month in labels], dtype="float64").T
    assert labels == list(MONTHS)  # openEO labels months YYYY-MM
    expected = expected_zonal_means(s3)
    for month_index, month in enumerate(labels):
        np.testing.assert_allclose(data[:, month_index], expected[month], rtol=0, atol=1e-6, err_msg=month)
    # the two fields differ and lie in the scaled range
    assert np.all((data > 0) & (data < 255)) and abs(data[0, 0] - data[1, 0]) > 1


def test_downloaded_time_series_converts_with_the_client_pandas_and_xarray(connection, s3, tmp_path):
    # Given the workflow, downloaded from the local system (synchronous processing) as JSON, CSV and netCDF
    stats = monthly_zonal_statistics(connection)
    json_path, csv_path, netcdf_path = tmp_path / "stats.json", tmp_path / "stats.csv", tmp_path / "stats.nc"
    for path, file_format in ((json_path, "JSON"), (csv_path, "CSV"), (netcdf_path, "netCDF")):
        stats.download(path, format=file_format)
    expected = expected_zonal_means(s3)

    # When the client's helper converts the JSON, pandas reads the CSV and xarray the netCDF
    frame = timeseries_json_to_pandas(json_path)
    table = pd.read_csv(csv_path).set_index(["date", "feature_index"])
    with xr.open_dataset(netcdf_path, decode_times=False) as dataset:
        assert dataset.attrs["featureType"] == "timeSeries"
        netcdf = dataset["value"].values  # one value per polygon and month: the variable `value`
        netcdf_months = [str(m) for m in dataset["t"].values]

    # Then all three hold, per polygon and month, the numpy reference
    assert list(frame.index) == list(MONTHS) and list(frame.columns) == [0, 1]
    assert netcdf_months == list(MONTHS)
    for month_index, month in enumerate(MONTHS):
        np.testing.assert_allclose(frame.loc[month].to_numpy(), expected[month], rtol=0, atol=1e-6)
        np.testing.assert_allclose(table.loc[month, "value"].to_numpy(), expected[month], rtol=0, atol=1e-6)
        np.testing.assert_allclose(netcdf[:, month_index], expected[month], rtol=0, atol=1e-4)  # float32
