"""Loading from the STAC catalog, window reads, COG writing and the manifest (files on disk, no AWS)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import stratus_processing.processes  # noqa: F401  (registers the processes)
from affine import Affine
from rasterio.crs import CRS
from stratus import catalog_layout
from stratus.errors import CollectionNotFoundException, ProcessParameterInvalidException
from stratus_processing import cube as cubes
from stratus_processing.errors import (
    FormatUnsuitableException,
    NoDataAvailableException,
    TemporalExtentEmptyException,
)
from stratus_processing.graph import evaluate_graph
from stratus_processing.grid import Grid
from stratus_processing.io.cog import RasterReader, gdal_path, s3_endpoint_options
from stratus_processing.io.save import GTIFF_MEDIA_TYPE, write_cog
from stratus_processing.manifest import build_manifest

from tests.unit.processing.conftest import DEMO_BUCKET
from tests.unit.processing.processing_testkit import (
    BOLZANO_EXTENT,
    JUNE_2022,
    june_items,
    mean_ndvi_graph,
    red_nir_cube,
    reference_mean_ndvi,
    small_grid,
    utc,
)


def load(env, **arguments):
    arguments = {"id": "sentinel-2-l2a-demo", "spatial_extent": BOLZANO_EXTENT, "temporal_extent": JUNE_2022,
                 **arguments}
    return evaluate_graph({"load": {"process_id": "load_collection", "arguments": arguments, "result": True}}, env)


def demo_items(demo_s3, area_epsg=32632):
    keys = [o["Key"] for o in demo_s3.list_objects_v2(Bucket=DEMO_BUCKET,
                                                       Prefix=catalog_layout.items_prefix("sentinel-2-l2a-demo"))["Contents"]]
    return june_items(lambda k: __import__("json").loads(demo_s3.path(DEMO_BUCKET, k).read_text()), keys,
                      area_epsg=area_epsg)


def read_source(demo_s3, href):
    return demo_s3.path(*href.removeprefix("s3://").split("/", 1)).read_bytes()


# --- load_collection ----------------------------------------------------------------------------

def test_load_collection_uses_the_native_grid_of_the_extent(demo_env, demo_s3):
    # When
    cube = load(demo_env, bands=["B04", "B08"])
    # Then: 96 × 84 px of the 10 m grid, exactly at the extent, six June dates
    grid = cubes.grid_of(cube)
    assert cube.dims == ("t", "bands", "y", "x")
    assert (grid.width, grid.height) == (96, 84)
    assert grid.transform == Affine(10, 0, 679720, 0, -10, 5151920)
    assert grid.crs == CRS.from_epsg(32632)
    assert [t.day for t in cubes.time_labels(cube)] == [2, 7, 12, 17, 22, 27]
    assert cubes.common_names(cube) == {"B04": "red", "B08": "nir"}


def test_load_collection_values_are_scaled_source_pixels(demo_env, demo_s3):
    # Given the first June item's B08 window read with plain rasterio
    item = demo_items(demo_s3)[0]
    with rasterio.MemoryFile(read_source(demo_s3, item["assets"]["B08"]["href"])) as memfile, memfile.open() as src:
        dn = src.read(1, window=rasterio.windows.Window(172, 108, 96, 84)).astype(float)
    # When
    cube = load(demo_env, bands=["B08"])
    # Then
    expected = np.where(dn == 0, np.nan, dn * 0.0001)
    np.testing.assert_array_equal(cube.isel(t=0).sel(bands="B08").values, expected)


def test_load_collection_nodata_becomes_nan(demo_env):
    # The 2022-06-22 Bolzano scene has no data in its south-east corner, which reaches the extent.
    cube = load(demo_env, bands=["B04"])
    by_day = {t.day: i for i, t in enumerate(cubes.time_labels(cube))}
    corner = cube.isel(t=by_day[22]).sel(bands="B04").values
    assert np.isnan(corner[-1, -1]) and not np.isnan(corner[0, 0])
    assert not np.isnan(cube.isel(t=by_day[17]).values).any()


def test_load_collection_resamples_scl_nearest_onto_the_10m_grid(demo_env, demo_s3):
    # Given the SCL (20 m) of the first June item
    item = demo_items(demo_s3)[0]
    with rasterio.MemoryFile(read_source(demo_s3, item["assets"]["SCL"]["href"])) as memfile, memfile.open() as src:
        scl20 = src.read(1)
    # When
    cube = load(demo_env, bands=["B04", "SCL"])
    # Then each 10 m pixel carries the class of the 20 m pixel it lies in (the extent starts at an even pixel)
    scl10 = cube.isel(t=0).sel(bands="SCL").values
    expected = np.repeat(np.repeat(scl20[54:96, 86:134], 2, axis=0), 2, axis=1)
    np.testing.assert_array_equal(scl10, expected)
    assert set(np.unique(scl10)) <= {3, 4, 5, 6, 8, 9}


def test_load_collection_accepts_common_names_and_wgs84_extents(demo_env):
    # Given the extent in WGS84 and the band by its common name
    cube = load(demo_env, bands=["nir"],
                spatial_extent={"west": 11.345, "south": 46.49, "east": 11.35, "north": 46.495})
    # Then the cube is on the items' UTM grid (10 m, aligned with the source pixels)
    grid = cubes.grid_of(cube)
    assert cubes.band_names(cube) == ["B08"]
    assert grid.crs == CRS.from_epsg(32632) and grid.resolution == (10, 10)
    assert (grid.transform.c - 678000) % 10 == 0 and (5153000 - grid.transform.f) % 10 == 0
    assert 35 <= grid.width <= 45 and 50 <= grid.height <= 60


def test_load_collection_in_another_utm_zone(demo_env):
    # Given an extent over the Vienna area (EPSG:32633) in WGS84
    cube = load(demo_env, bands=["B04"], spatial_extent={"west": 16.36, "south": 48.20, "east": 16.37, "north": 48.21},
                temporal_extent=["2022-06-01", None])
    # Then its native zone is used, and open-ended time includes July
    assert cubes.grid_of(cube).crs == CRS.from_epsg(32633)
    assert cube.sizes["t"] == 8


def test_load_collection_with_a_polygon_extent_masks_outside_pixels(demo_env):
    # Given a triangle over the south-west half of the extent, in the items' UTM zone
    west, south, east, north = (BOLZANO_EXTENT[k] for k in ("west", "south", "east", "north"))
    triangle = {"type": "Polygon", "crs": {"type": "name", "properties": {"name": "EPSG:32632"}},
                "coordinates": [[[west, south], [east, south], [west, north], [west, south]]]}
    # When
    cube = load(demo_env, bands=["B04"], spatial_extent=triangle)
    # Then the grid is the polygon's bounding box, and pixels whose centre is outside it are NaN
    assert (cubes.grid_of(cube).width, cubes.grid_of(cube).height) == (96, 84)
    first = cube.isel(t=0, bands=0).values
    assert np.isnan(first[0, -1]) and np.isfinite(first[-1, 0])
    assert np.isfinite(first).sum() == pytest.approx(96 * 84 / 2, rel=0.05)


def test_load_collection_temporal_end_is_exclusive(demo_env):
    cube = load(demo_env, bands=["B04"], temporal_extent=["2022-06-02T10:20:31Z", "2022-06-07T10:20:31Z"])
    assert [t.day for t in cubes.time_labels(cube)] == [2]


def test_load_collection_errors(demo_env):
    with pytest.raises(CollectionNotFoundException, match="nope"):
        load(demo_env, id="nope")
    with pytest.raises(ProcessParameterInvalidException, match="B99"):
        load(demo_env, bands=["B99"])
    with pytest.raises(NoDataAvailableException):
        load(demo_env, temporal_extent=["2021-01-01", "2021-02-01"])
    with pytest.raises(NoDataAvailableException):
        load(demo_env, spatial_extent={"west": 0, "south": 0, "east": 1, "north": 1})
    with pytest.raises(TemporalExtentEmptyException):
        load(demo_env, temporal_extent=["2022-07-01", "2022-06-01"])
    with pytest.raises(ProcessParameterInvalidException, match="GeoJSON"):
        load(demo_env, spatial_extent={"type": "Polygon", "coordinates": []})
    with pytest.raises(ProcessParameterInvalidException, match="GiB"):
        load(demo_env, spatial_extent=None, temporal_extent=None)  # both areas on one grid: far too large


def test_load_collection_logs_what_it_found(demo_env, reporter):
    load(demo_env, bands=["B04", "B08"])
    [entry] = [e for e in reporter.logs if e["message"].startswith("load_collection")]
    assert "6 items" in entry["message"] and "B04, B08" in entry["message"] and "96 × 84 px" in entry["message"]
    assert entry["path"] == [{"node_id": "load", "process_id": "load_collection"}]


# --- raster reads -------------------------------------------------------------------------------

def test_reader_warps_when_grids_differ(tmp_path):
    # Given a 4 × 4 file in EPSG:32633 at 10 m
    values = np.arange(1, 17, dtype="uint16").reshape(4, 4)
    source = small_grid(4, 4, epsg=32633)
    path = tmp_path / "src.tif"
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint16", crs=source.crs,
                       transform=source.transform, nodata=0) as dst:
        dst.write(values, 1)
    reader = RasterReader()
    # When read onto a 5 m grid (nearest) that also extends 10 m beyond the file's east edge
    target = Grid(source.crs, Affine(5, 0, source.transform.c, 0, -5, source.transform.f), 10, 8)
    out = reader.read(str(path), target)
    # Then each source pixel becomes 2 × 2 target pixels and the uncovered part is NaN
    np.testing.assert_array_equal(out[:, :8], np.repeat(np.repeat(values, 2, 0), 2, 1))
    assert np.isnan(out[:, 8:]).all()
    # And an aligned window partly outside the file is read directly, NaN outside
    shifted = Grid(source.crs, Affine(10, 0, source.transform.c + 20, 0, -10, source.transform.f), 4, 4)
    window = reader.read(str(path), shifted)
    np.testing.assert_array_equal(window[:, :2], values[:, 2:])
    assert np.isnan(window[:, 2:]).all()


def test_reader_decodes_into_the_given_array(tmp_path):
    # Given a 4 × 4 uint16 file with no-data 0, and a reused float64 array holding other values
    values = np.arange(0, 16, dtype="uint16").reshape(4, 4)
    source = small_grid(4, 4, epsg=32633)
    path = tmp_path / "src.tif"
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint16", crs=source.crs,
                       transform=source.transform, nodata=0) as dst:
        dst.write(values, 1)
    reader = RasterReader()
    shifted = Grid(source.crs, Affine(10, 0, source.transform.c + 20, 0, -10, source.transform.f), 4, 4)
    finer = Grid(source.crs, Affine(5, 0, source.transform.c, 0, -5, source.transform.f), 4, 4)
    outside = Grid(source.crs, Affine(10, 0, source.transform.c + 100, 0, -10, source.transform.f), 4, 4)
    # When each kind of read (the whole file, a window partly outside it, a warped one, one outside it)
    # goes into that array, with the STAC no-data and with the file's own
    for grid in (source, shifted, finer, outside):
        for nodata in (0, None):
            out = np.full(grid.shape, 7.5)
            returned = reader.read(str(path), grid, nodata=nodata, out=out)
            # Then the values are those of a read into a new array, in the array given
            assert returned is out
            np.testing.assert_array_equal(out, reader.read(str(path), grid, nodata=nodata))
    assert np.isnan(reader.read(str(path), source, out=np.zeros((4, 4)))[0, 0])  # the no-data pixel


def test_gdal_settings_for_a_custom_endpoint():
    assert s3_endpoint_options({"AWS_ENDPOINT_URL": "http://127.0.0.1:5123"}) == {
        "AWS_S3_ENDPOINT": "127.0.0.1:5123", "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE"}
    assert s3_endpoint_options({}) == {}
    assert gdal_path("s3://bucket/data/x.tif") == "/vsis3/bucket/data/x.tif"


# --- save_result and the manifest ---------------------------------------------------------------

def save(env, data, fmt="GTiff"):
    graph = {"s": {"process_id": "save_result", "result": True,
                   "arguments": {"data": {"from_parameter": "cube"}, "format": fmt}}}
    return evaluate_graph(graph, env, arguments={"cube": data})


def reduced_cube():
    red = np.array([[[0.1, 0.2, np.nan], [0.3, 0.4, 0.5]]])
    nir = np.array([[[0.5, 0.6, np.nan], [0.1, 0.8, 0.9]]])
    grid = small_grid(3, 2, west=679720.0, north=5151920.0)
    return red_nir_cube(red, nir, grid=grid).isel(t=0, drop=True).sel(bands="B08", drop=True)


def test_save_result_writes_a_cog_on_the_exact_grid(demo_env, result_store):
    # Given a 2-D cube
    cube = reduced_cube()
    # When saved as GTiff (format names are case-insensitive)
    assert save(demo_env, cube, fmt="gtiff") is True
    # Then
    [asset] = result_store.assets
    assert asset.name == "result.tif" and asset.key == "jobs/j-1/runs/r-1/results/result.tif"
    with rasterio.open(result_store.path_of(asset.key)) as src:
        assert src.crs == CRS.from_epsg(32632)
        assert src.transform == Affine(10, 0, 679720, 0, -10, 5151920)
        assert (src.count, src.dtypes[0]) == (1, "float32")
        assert np.isnan(src.nodata)
        np.testing.assert_array_equal(src.read(1), cube.values.astype("float32"))
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.profile["tiled"] and src.compression.value == "DEFLATE"
    assert asset.file_size == result_store.path_of(asset.key).stat().st_size


def test_save_result_writes_one_file_per_date_with_bands(demo_env, result_store):
    cube = red_nir_cube(np.full((2, 2, 3), 0.1), np.full((2, 2, 3), 0.5))
    save(demo_env, cube)
    assert [a.name for a in result_store.assets] == ["result_2022-06-02.tif", "result_2022-06-07.tif"]
    with rasterio.open(result_store.path_of(result_store.assets[1].key)) as src:
        assert src.count == 2 and src.descriptions == ("B04", "B08")
        np.testing.assert_allclose(src.read(2), 0.5)


def test_save_result_rejects_unknown_formats_and_dimensions(demo_env):
    with pytest.raises(ProcessParameterInvalidException, match="'format'") as caught:
        save(demo_env, reduced_cube(), fmt="JPEG2000")
    assert "GTiff" in caught.value.message
    with pytest.raises(FormatUnsuitableException):
        save(demo_env, reduced_cube().expand_dims(depth=[1, 2]))


def test_manifest_describes_the_assets(demo_env, result_store):
    # Given a saved result of a cube reduced over June
    cube = cubes.carry_metadata(reduced_cube(), red_nir_cube(np.zeros((2, 1, 1)), np.zeros((2, 1, 1))))
    save(demo_env, cube)
    # When
    manifest = build_manifest(result_store.assets).to_json()
    # Then
    asset = manifest["assets"]["result.tif"]
    assert asset["key"] == "jobs/j-1/runs/r-1/results/result.tif"
    assert asset["type"] == GTIFF_MEDIA_TYPE and asset["roles"] == ["data"]
    assert asset["proj:epsg"] == 32632 and asset["proj:shape"] == [2, 3]
    assert asset["proj:transform"] == [10, 0, 679720, 0, -10, 5151920]
    assert asset["proj:bbox"] == [679720, 5151900, 679750, 5151920]
    assert asset["raster:bands"][0]["data_type"] == "float32" and asset["raster:bands"][0]["nodata"] == "nan"
    assert asset["raster:bands"][0]["statistics"]["valid_percent"] == pytest.approx(83.33)
    west, south, east, north = manifest["bbox"]
    assert 11.34 < west < east < 11.35 and 46.49 < south < north < 46.50
    assert manifest["geometry"]["type"] == "Polygon"
    assert manifest["properties"] == {"datetime": None, "start_datetime": "2022-06-02T10:00:00Z",
                                      "end_datetime": "2022-06-07T10:00:00Z", "proj:epsg": 32632}
    # And the asset carries what its STAC Item needs: its own WGS84 footprint, proj:code, raster fields
    assert asset["proj:code"] == "EPSG:32632"
    assert asset["bbox"] == manifest["bbox"] and asset["geometry"] == manifest["geometry"]
    assert asset["raster:sampling"] == "area" and asset["raster:spatial_resolution"] == 10


def test_manifest_assets_on_different_grids_have_their_own_footprints(demo_env, result_store):
    # Given two results on grids 1 km apart, one in a geographic CRS
    save(demo_env, reduced_cube())
    shifted = red_nir_cube(np.zeros((1, 2, 3)), np.ones((1, 2, 3)),
                           grid=small_grid(3, 2, epsg=4326, west=11.4, north=46.6, resolution=0.001))
    save(demo_env, shifted.isel(t=0, drop=True).sel(bands="B08", drop=True))
    # When
    manifest = build_manifest(result_store.assets).to_json()
    # Then each asset has its footprint, the manifest their union
    first, second = (manifest["assets"][name] for name in ("result.tif", "result_2.tif"))
    assert first["bbox"] != second["bbox"]
    assert second["bbox"] == pytest.approx([11.4, 46.598, 11.403, 46.6])
    assert manifest["bbox"] == [first["bbox"][0], first["bbox"][1], second["bbox"][2], second["bbox"][3]]
    assert manifest["geometry"]["type"] == "Polygon" and len(manifest["geometry"]["coordinates"][0]) == 5
    # And a resolution in degrees is no raster:spatial_resolution (metres)
    assert second["proj:code"] == "EPSG:4326" and "raster:spatial_resolution" not in second


def test_mean_ndvi_equals_numpy_on_the_source_cogs(demo_env, demo_s3, result_store):
    # Given the end-to-end scenario's graph
    graph = mean_ndvi_graph(format="GTiff")
    # When
    evaluate_graph(graph, demo_env)
    # Then
    expected = reference_mean_ndvi(lambda href: read_source(demo_s3, href), demo_items(demo_s3), BOLZANO_EXTENT)
    with rasterio.open(result_store.path_of(result_store.assets[0].key)) as src:
        actual = src.read(1)
    assert actual.shape == (84, 96)
    np.testing.assert_array_equal(actual, expected.astype("float32"))


def test_temporal_extent_survives_when_t_is_kept(result_store, demo_env):
    cube = red_nir_cube(np.zeros((1, 1, 1)), np.ones((1, 1, 1)), times=[utc(2022, 6, 2, 10, 20, 31)])
    save(demo_env, cube)
    manifest = build_manifest(result_store.assets).to_json()
    assert manifest["assets"]["result_2022-06-02.tif"]["datetime"] == "2022-06-02T10:20:31Z"
    assert manifest["properties"]["start_datetime"] == manifest["properties"]["end_datetime"]


def test_write_cog_refuses_a_mismatching_grid(tmp_path):
    with pytest.raises(ValueError, match="grid"):
        write_cog(tmp_path / "x.tif", np.zeros((1, 2, 2)), small_grid(3, 2))
