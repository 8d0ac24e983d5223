"""save_result's formats (GTiff options, CF netCDF, JSON, GeoJSON), the one format list, and the
STAC metadata of outputs in the manifest."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import rasterio
import stratus_processing.processes  # noqa: F401  (registers the processes)
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from stratus.errors import ProcessParameterInvalidException
from stratus.events import LogLevel
from stratus.file_formats import FILE_FORMATS, find_format, ignored_options, validate_options
from stratus_processing import cube as cubes
from stratus_processing.errors import FormatUnsuitableException
from stratus_processing.graph import evaluate_graph
from stratus_processing.io.save import BandStatistics, to_json_value
from stratus_processing.manifest import build_manifest

from tests.unit.processing.processing_testkit import red_nir_cube, small_grid, utc


def save(env, data, fmt, options=None):
    arguments = {"data": {"from_parameter": "value"}, "format": fmt}
    if options is not None:
        arguments["options"] = options
    graph = {"s": {"process_id": "save_result", "arguments": arguments, "result": True}}
    return evaluate_graph(graph, env, arguments={"value": data})


def two_dates():
    red = np.array([[[0.1, 0.2, np.nan], [0.3, 0.4, 0.5]], [[0.2, 0.2, 0.2], [np.nan, 0.1, 0.0]]])
    nir = np.array([[[0.5, 0.6, np.nan], [0.1, 0.8, 0.9]], [[0.4, 0.4, 0.4], [0.3, np.nan, 1.0]]])
    return red_nir_cube(red, nir, grid=small_grid(3, 2, west=679720.0, north=5151920.0),
                        times=[utc(2022, 6, 2, 10, 20, 31), utc(2022, 6, 7, 10, 20, 31)])


# --- the format list ----------------------------------------------------------------------------

def test_file_formats_have_the_openeo_shape():
    assert set(FILE_FORMATS) == {"input", "output"}
    assert {"GTiff", "netCDF", "JSON"} <= set(FILE_FORMATS["output"])
    for kind in FILE_FORMATS.values():
        for name, spec in kind.items():
            assert spec["title"] and spec["gis_data_types"], name
            assert set(spec["gis_data_types"]) <= {"raster", "vector", "table", "pointcloud", "other"}
            for parameter, schema in spec["parameters"].items():
                assert schema["description"] and "type" in schema and "default" in schema, (name, parameter)
    assert find_format("gtiff") == "GTiff" and find_format("NETCDF") == "netCDF" and find_format("PNG") is None


def test_options_are_validated_against_the_schemas():
    assert validate_options("GTiff", {"datatype": "uint8"}) == {"datatype": "uint8", "nodata": None,
                                                                "compression": "DEFLATE", "overviews": True}
    with pytest.raises(ValueError, match="no option 'quality'"):
        validate_options("GTiff", {"quality": 90})
    with pytest.raises(ValueError, match="must be one of"):
        validate_options("GTiff", {"datatype": "complex64"})
    with pytest.raises(ValueError, match="at most 9"):
        validate_options("netCDF", {"compression_level": 12})
    with pytest.raises(ValueError, match="must be boolean"):
        validate_options("GTiff", {"overviews": 1})


def test_save_result_rejects_bad_options_and_unsuitable_data(demo_env):
    with pytest.raises(ProcessParameterInvalidException, match="'options'.*no option 'tiled'"):
        save(demo_env, two_dates(), "GTiff", {"tiled": True})
    with pytest.raises(ProcessParameterInvalidException, match="not a uint8 value"):
        save(demo_env, two_dates(), "GTiff", {"datatype": "uint8", "nodata": -1})
    with pytest.raises(ProcessParameterInvalidException, match="netCDF, JSON"):
        save(demo_env, two_dates(), "PNG")
    with pytest.raises(FormatUnsuitableException, match="raster data cubes"):
        save(demo_env, [1, 2, 3], "netCDF")
    with pytest.raises(FormatUnsuitableException, match="vector data cubes"):
        save(demo_env, two_dates(), "GeoJSON")


def test_other_back_ends_options_are_accepted_and_left_out():
    # As scripts written for openeo-geopyspark-driver pass them
    geopyspark = {"filename_prefix": "ndvi", "tile_grid": "utm-10km", "sample_by_feature": False,
                  "colormap": {"1": 255}, "ZLEVEL": "9", "feature_id_property": "id"}
    assert validate_options("GTiff", {**geopyspark, "datatype": "uint8"}) == {
        "datatype": "uint8", "nodata": None, "compression": "DEFLATE", "overviews": True}
    assert ignored_options("GTiff", geopyspark) == sorted(geopyspark)
    assert validate_options("netCDF", {"sample_by_feature": True, "filename_prefix": "x"}) == {
        "datatype": "float32", "compression_level": 4}
    # geopyspark's overview values are ours too
    assert validate_options("GTiff", {"overviews": "OFF"})["overviews"] == "OFF"
    # while options nobody documents, or for another format, stay refused
    with pytest.raises(ValueError, match="no option 'quality'"):
        validate_options("GTiff", {"quality": 90, "filename_prefix": "x"})
    with pytest.raises(ValueError, match="no option 'colormap'"):
        validate_options("netCDF", {"colormap": {}})
    with pytest.raises(ValueError, match="must be one of"):
        validate_options("GTiff", {"overviews": "SOMETIMES"})


@pytest.mark.parametrize("overviews, has_overviews", [("AUTO", True), ("OFF", False)])
def test_save_result_ignores_other_back_ends_options_with_one_warning(demo_env, result_store, reporter, overviews,
                                                                     has_overviews):
    # Given a cube larger than one 512 px tile, so that overviews are worth adding
    size = 1100
    values = np.arange(size * size, dtype=float).reshape(1, size, size) % 200
    cube = red_nir_cube(values, values, grid=small_grid(size, size)).isel(t=0, drop=True)
    # When saved with geopyspark's options
    save(demo_env, cube, "GTiff", {"filename_prefix": "ndvi", "tile_grid": "utm-10km", "overviews": overviews,
                                   "datatype": "uint8"})
    # Then our options keep working (geopyspark's overview values included) and theirs change nothing
    [asset] = result_store.assets
    assert asset.name == "result.tif"
    with rasterio.open(result_store.path_of(asset.key)) as src:
        assert src.dtypes[0] == "uint8" and bool(src.overviews(1)) is has_overviews
    warnings = [entry["message"] for entry in reporter.logs if entry["level"] == LogLevel.WARNING]
    assert warnings == ["save_result: GTiff option(s) 'filename_prefix', 'tile_grid' of other back-ends have no "
                        "use here and were ignored"]


# --- GTiff ----------------------------------------------------------------------------------------

def test_gtiff_integer_output_with_nodata_and_compression(demo_env, result_store):
    # Given NDVI-like values scaled to 0..200 with a gap
    cube = two_dates().isel(t=0, drop=True).sel(bands="B08", drop=True) * 200
    # When saved as uint8, ZSTD, without overviews
    save(demo_env, cube, "GTiff", {"datatype": "uint8", "compression": "ZSTD", "overviews": False})
    # Then the values are rounded, no-data is the type's maximum, and the metadata says so
    [asset] = result_store.assets
    with rasterio.open(result_store.path_of(asset.key)) as src:
        assert src.dtypes[0] == "uint8" and src.nodata == 255 and src.compression.value == "ZSTD"
        assert src.overviews(1) == []
        np.testing.assert_array_equal(src.read(1), [[100, 120, 255], [20, 160, 180]])
    assert asset.raster_bands[0]["nodata"] == 255 and asset.raster_bands[0]["data_type"] == "uint8"
    assert asset.raster_bands[0]["statistics"]["maximum"] == 180


def test_gtiff_per_date_assets_carry_their_datetime_and_checksum(demo_env, result_store):
    save(demo_env, two_dates(), "GTiff")
    manifest = build_manifest(result_store.assets).to_json()
    first = manifest["assets"]["result_2022-06-02.tif"]
    assert first["datetime"] == "2022-06-02T10:20:31Z"
    assert first["eo:bands"] == [{"name": "B04", "common_name": "red"}, {"name": "B08", "common_name": "nir"}]
    content = result_store.path_of(first["key"]).read_bytes()
    assert first["file:checksum"] == "1220" + hashlib.sha256(content).hexdigest()
    assert first["file:size"] == len(content)
    assert [b["statistics"]["valid_percent"] for b in first["raster:bands"]] == [83.33, 83.33]


# --- netCDF ---------------------------------------------------------------------------------------

def test_netcdf_is_cf_compliant_and_georeferenced(demo_env, result_store):
    # Given a cube with t and bands
    cube = two_dates()
    # When
    save(demo_env, cube, "netCDF")
    # Then one file, read back by xarray with CF decoding
    [asset] = result_store.assets
    assert asset.name == "result.nc" and asset.media_type == "application/netcdf"
    path = result_store.path_of(asset.key)
    with xr.open_dataset(path, engine="netcdf4") as dataset:
        assert dataset.attrs["Conventions"] == "CF-1.8"
        assert set(dataset.data_vars) == {"crs", "B04", "B08"}  # bands as variables, no bands dimension
        assert [str(v) for v in dataset["t"].values] == ["2022-06-02T10:20:31.000000000",
                                                        "2022-06-07T10:20:31.000000000"]
        assert dataset["x"].attrs["standard_name"] == "projection_x_coordinate" and dataset["x"].attrs["units"] == "m"
        assert dataset["y"].attrs["standard_name"] == "projection_y_coordinate"
        np.testing.assert_array_equal(dataset["x"].values, cube["x"].values)
        crs = dataset["crs"].attrs
        assert crs["grid_mapping_name"] == "transverse_mercator"
        assert CRS.from_wkt(crs["crs_wkt"]) == CRS.from_epsg(32632)
        assert crs["spatial_ref"] == crs["crs_wkt"]
        b08 = dataset["B08"]
        assert b08.dims == ("t", "y", "x") and b08.dtype == np.float32 and b08.attrs["grid_mapping"] == "crs"
        assert b08.attrs["common_name"] == "nir"
        np.testing.assert_array_equal(b08.values, cube.sel(bands="B08").values.astype("float32"))
    # And GDAL reads the same grid
    with rasterio.open(f"netcdf:{path}:B04") as src:
        assert src.crs == CRS.from_epsg(32632)
        assert src.transform == Affine(10, 0, 679720, 0, -10, 5151920)
    # And the manifest gives the file's time span, projection and per-band statistics
    entry = build_manifest(result_store.assets).assets["result.nc"]
    assert entry["start_datetime"] == "2022-06-02T10:20:31Z" and entry["end_datetime"] == "2022-06-07T10:20:31Z"
    assert entry["proj:epsg"] == 32632 and entry["proj:shape"] == [2, 3] and len(entry["raster:bands"]) == 2


def test_netcdf_without_time_or_bands(demo_env, result_store):
    cube = cubes.carry_metadata(two_dates().mean("t").sel(bands="B04", drop=True), two_dates())
    save(demo_env, cube, "netcdf", {"datatype": "float64", "compression_level": 0})
    [asset] = result_store.assets
    with xr.open_dataset(result_store.path_of(asset.key), engine="netcdf4") as dataset:
        assert "t" not in dataset.dims and dataset["data"].dims == ("y", "x")
        assert dataset["data"].dtype == np.float64
        assert dataset.attrs["time_coverage_start"] == "2022-06-02T10:20:31Z"
        np.testing.assert_array_equal(dataset["data"].values, cube.values)


# --- JSON -----------------------------------------------------------------------------------------

def test_json_for_numbers_arrays_and_small_cubes(demo_env, result_store):
    save(demo_env, [1, 2.5, None, float("nan")], "JSON")
    save(demo_env, two_dates().isel(x=0, y=0, drop=True), "json")
    first, second = (json.loads(result_store.path_of(a.key).read_text()) for a in result_store.assets)
    assert first == [1, 2.5, None, None]
    assert second["dimensions"] == ["t", "bands"]
    assert second["labels"]["bands"] == ["B04", "B08"] and second["labels"]["t"][0] == "2022-06-02T10:20:31Z"
    assert second["data"] == [[0.1, 0.5], [0.2, 0.4]]
    assert [a.name for a in result_store.assets] == ["result.json", "result_2.json"]
    assert result_store.assets[0].media_type == "application/json" and result_store.assets[0].grid is None
    entry = build_manifest(result_store.assets).assets["result.json"]
    assert entry["file:size"] > 0 and "proj:epsg" not in entry


def test_vector_cubes_as_json_and_geojson(demo_env, result_store):
    vector_cube = pytest.importorskip("stratus_processing.vector_cube")
    from shapely.geometry import Point
    from stratus_processing.geometry import Features
    from stratus_processing.grid import WGS84

    features = Features((Point(11.3, 46.5), Point(11.4, 46.6)), ({"name": "a"}, {"name": "b"}), (None, None), WGS84)
    cube = vector_cube.make_vector_cube(features, np.array([[0.5], [np.nan]]), dims=["bands"],
                                        coords={"bands": ["ndvi"]})
    save(demo_env, cube, "JSON")
    save(demo_env, cube, "GeoJSON")
    as_json, as_geojson = (json.loads(result_store.path_of(a.key).read_text()) for a in result_store.assets)
    assert as_json == vector_cube.to_json(cube) and as_json["data"] == [[0.5], [None]]
    assert as_geojson["type"] == "FeatureCollection" and as_geojson == vector_cube.to_geojson(cube)
    assert result_store.assets[1].media_type == "application/geo+json"


def test_json_refuses_large_rasters():
    with pytest.raises(FormatUnsuitableException, match="GTiff or netCDF"):
        to_json_value(xr.DataArray(np.zeros((1001, 1000)), dims=("y", "x")))


# --- statistics -----------------------------------------------------------------------------------

def test_statistics_merge_like_one_pass():
    rng = np.random.default_rng(1)
    values = rng.normal(size=1000).astype("float32")
    values[::7] = np.nan
    parts = [BandStatistics.of(chunk, np.isfinite(chunk)) for chunk in np.array_split(values, 7)]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    whole = BandStatistics.of(values, np.isfinite(values)).as_stac()
    for key, value in merged.as_stac().items():
        assert value == pytest.approx(whole[key], rel=1e-9)
