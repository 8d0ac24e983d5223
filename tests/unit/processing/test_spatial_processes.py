"""Spatial processes (filter_bbox, filter_spatial, mask_polygon, aggregate_spatial, apply_kernel,
resample_spatial, resample_cube_spatial) and the vector cube, on small synthetic UTM cubes."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import shapely
import stratus_processing.processes  # noqa: F401  (registers the processes)
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform, transform_geom
from shapely.geometry import shape
from stratus.errors import ProcessParameterInvalidException
from stratus_processing import cube as cubes
from stratus_processing import vector_cube as vectors
from stratus_processing.env import EvalEnv
from stratus_processing.geometry import Features, parse_geojson
from stratus_processing.graph import evaluate_graph
from stratus_processing.grid import WGS84, Grid
from stratus_processing.processes.spatial import KernelDimensionsUnevenException
from stratus_processing.processes.vector import TargetDimensionExistsException

from tests.unit.processing.processing_testkit import small_grid, utc

UTM32 = "EPSG:32632"
WEST, NORTH = 600000.0, 5000000.0  # upper-left corner of the test grids, 10 m pixels


def run(process_id, **arguments):
    """Evaluate one node; arguments named `*_cube` are passed as graph parameters."""
    parameters = {k: v for k, v in arguments.items() if k.endswith("_cube")}
    node_arguments = {k.removesuffix("_cube"): {"from_parameter": k} if k in parameters else v
                      for k, v in arguments.items()}
    graph = {"n": {"process_id": process_id, "arguments": node_arguments, "result": True}}
    return evaluate_graph(graph, EvalEnv(), arguments=parameters)


def reducer(process_id, **extra):
    return {"process_graph": {"r": {"process_id": process_id, "result": True,
                                    "arguments": {"data": {"from_parameter": "data"}, **extra}}}}


def utm_polygon(*corners):
    """A GeoJSON polygon given in UTM 32N coordinates, as a user would send it: in EPSG:4326."""
    ring = [list(c) for c in corners] + [list(corners[0])]
    return transform_geom(UTM32, "EPSG:4326", {"type": "Polygon", "coordinates": [ring]})


def utm_box(west, south, east, north):
    return utm_polygon((west, south), (east, south), (east, north), (west, north))


def pixel_centres(grid):
    return np.meshgrid(grid.x_coords(), grid.y_coords())


@pytest.fixture
def cube():
    """(t: 2, bands: 2, y: 8, x: 10) on a 10 m UTM 32N grid, with a few no-data pixels."""
    rng = np.random.default_rng(42)
    values = rng.uniform(0, 1, (2, 2, 8, 10))
    values[0, 0, 1, 1] = values[1, 1, 4, 6] = values[0, 1, 2, 3] = np.nan
    return cubes.make_cube(values, grid=small_grid(10, 8, west=WEST, north=NORTH),
                           times=[utc(2022, 6, 1), utc(2022, 6, 11)], bands=["B04", "B08"],
                           common_names=["red", "nir"])


# --- aggregate_spatial ----------------------------------------------------------------------------

def test_aggregate_spatial_mean_over_two_polygons_equals_numpy(cube):
    # Given two polygons (a rectangle and a triangle) drawn in UTM, sent as EPSG:4326 GeoJSON
    rectangle = [(600012.0, 4999948.0), (600047.0, 4999948.0), (600047.0, 4999987.0), (600012.0, 4999987.0)]
    triangle = [(600041.0, 4999922.0), (600098.0, 4999931.0), (600083.0, 4999993.0)]
    geometries = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "field"}, "geometry": utm_polygon(*rectangle)},
        {"type": "Feature", "properties": {"name": "wood"}, "geometry": utm_polygon(*triangle)},
    ]}
    # When
    result = run("aggregate_spatial", data_cube=cube, geometries=geometries, reducer=reducer("mean"))
    # Then one value per polygon, date and band: the nanmean over the pixels whose centre is inside
    assert result.dims == ("geometry", "t", "bands")
    assert vectors.is_vector_cube(result)
    xs, ys = pixel_centres(cubes.grid_of(cube))
    for index, corners in enumerate((rectangle, triangle)):
        inside = shapely.contains_xy(shapely.Polygon(corners), xs, ys)
        assert 6 <= inside.sum() < inside.size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = np.nanmean(cube.values[..., inside], axis=-1)
        np.testing.assert_allclose(result.values[index], expected, rtol=1e-12)
    assert list(result[vectors.FEATURE_PROPERTIES].values) == [{"name": "field"}, {"name": "wood"}]


def test_aggregate_spatial_target_dimension_counts_pixels(cube):
    # Given a 3 × 2 px box containing the no-data pixel (y=1, x=1) of the first date's B04
    box = utm_box(WEST, NORTH - 20, WEST + 30, NORTH)
    # When
    result = run("aggregate_spatial", data_cube=cube, geometries=box, reducer=reducer("sum"),
                 target_dimension="stats")
    # Then
    assert result.dims == ("geometry", "t", "bands", "stats")
    assert list(result["stats"].values) == ["value", "total_count", "valid_count"]
    first = result.isel(geometry=0, t=0).sel(bands="B04")
    assert first.sel(stats="total_count") == 6
    assert first.sel(stats="valid_count") == 5
    np.testing.assert_allclose(first.sel(stats="value"), np.nansum(cube.values[0, 0, :2, :3]))


def test_aggregate_spatial_target_dimension_must_be_new(cube):
    with pytest.raises(TargetDimensionExistsException):
        run("aggregate_spatial", data_cube=cube, geometries=utm_box(WEST, NORTH - 20, WEST + 30, NORTH),
            reducer=reducer("mean"), target_dimension="bands")


def test_aggregate_spatial_points_lines_and_geometries_outside(cube):
    # Given a point in pixel (row 2, col 4), a line along row 5 over cols 1..3, and a polygon far away
    point = transform_geom(UTM32, "EPSG:4326", {"type": "Point", "coordinates": [600043.0, 4999976.0]})
    line = transform_geom(UTM32, "EPSG:4326", {"type": "LineString",
                                               "coordinates": [[600011.0, 4999945.0], [600039.0, 4999945.0]]})
    elsewhere = {"type": "Polygon", "coordinates": [[[16.1, 48.1], [16.6, 48.1], [16.6, 48.6], [16.1, 48.1]]]}
    geometries = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": g} for g in (point, line, elsewhere)]}
    # When
    result = run("aggregate_spatial", data_cube=cube, geometries=geometries, reducer=reducer("max"))
    # Then the point takes its pixel, the line the pixels it crosses, the far polygon is no-data
    np.testing.assert_allclose(result.values[0], cube.values[..., 2, 4])
    np.testing.assert_allclose(result.values[1], np.nanmax(cube.values[..., 5, 1:4], axis=-1))
    assert np.isnan(result.values[2]).all()


def test_aggregate_spatial_geojson_in_the_cube_crs(cube):
    # Given a polygon in UTM coordinates, declared with the GeoJSON crs member
    polygon = {"type": "Polygon", "crs": {"type": "name", "properties": {"name": "EPSG:32632"}},
               "coordinates": [[[WEST, NORTH - 20], [WEST + 20, NORTH - 20], [WEST + 20, NORTH], [WEST, NORTH - 20]]]}
    # When
    result = run("aggregate_spatial", data_cube=cube, geometries=polygon, reducer=reducer("min"))
    # Then the pixel centre inside the triangle and the two on its hypotenuse count (row, col: (1, 1), (0, 1),
    # (1, 0)); the stored geometry is lon/lat
    expected = np.nanmin(np.stack([cube.values[..., 1, 1], cube.values[..., 0, 1], cube.values[..., 1, 0]]), axis=0)
    np.testing.assert_allclose(result.values[0], expected)
    west, south, east, north = result[vectors.FEATURE_GEOMETRY].values[0].bounds
    assert 9 < west < east < 11 and 45 < south < north < 46


def test_aggregate_spatial_rejects_geometry_collections(cube):
    collection = {"type": "GeometryCollection", "geometries": []}
    with pytest.raises(ProcessParameterInvalidException, match="GeometryCollection"):
        run("aggregate_spatial", data_cube=cube, geometries=collection, reducer=reducer("mean"))


# --- filter_bbox / filter_spatial -----------------------------------------------------------------

def test_filter_bbox_in_wgs84_on_a_utm_cube(cube):
    # Given a lon/lat box around the UTM rectangle 600020..600050 × 4999950..4999980
    inner = shape(utm_box(600021, 4999951, 600049, 4999979))
    west, south, east, north = inner.bounds
    # When
    result = run("filter_bbox", data_cube=cube, extent={"west": west, "south": south, "east": east, "north": north})
    # Then the pixels whose centre lies in the box remain (x 600025..600045, y 4999975..4999955)
    np.testing.assert_allclose(result["x"].values, [600025, 600035, 600045])
    np.testing.assert_allclose(result["y"].values, [4999975, 4999965, 4999955])
    np.testing.assert_array_equal(result.values, cube.values[..., 2:5, 2:5])
    assert cubes.grid_of(result).transform == Affine(10, 0, 600020, 0, -10, 4999980)


def test_filter_bbox_in_the_cube_crs_keeps_centres_on_the_edge(cube):
    result = run("filter_bbox", data_cube=cube,
                 extent={"west": 600005, "south": 4999935, "east": 600025, "north": 4999995, "crs": 32632})
    np.testing.assert_allclose(result["x"].values, [600005, 600015, 600025])
    assert result.sizes["y"] == 7


def test_filter_bbox_outside_the_cube_gives_an_empty_cube(cube):
    result = run("filter_bbox", data_cube=cube, extent={"west": 16.1, "south": 48.1, "east": 16.6, "north": 48.6})
    assert result.sizes["x"] == 0 and result.sizes["y"] == 0
    assert result.sizes["t"] == 2 and result.sizes["bands"] == 2


def test_filter_bbox_on_a_vector_cube_keeps_geometries_fully_inside(cube):
    # Given a vector cube of two boxes, the second crossing x = 600050
    boxes = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": utm_box(600000, 4999950, 600020, 4999970)},
        {"type": "Feature", "properties": {}, "geometry": utm_box(600040, 4999950, 600060, 4999970)}]}
    vector_cube = run("aggregate_spatial", data_cube=cube, geometries=boxes, reducer=reducer("mean"))
    # When
    result = run("filter_bbox", data_cube=vector_cube,
                 extent={"west": 599990, "south": 4999940, "east": 600050, "north": 4999980, "crs": 32632})
    # Then
    assert list(result["geometry"].values) == [0]


def test_filter_spatial_crops_to_the_bounding_box_and_masks_outside(cube):
    # Given a triangle whose bounding box spans cols 1..4 and rows 1..4
    triangle = utm_polygon((600010, 4999990), (600050, 4999990), (600010, 4999950))
    # When
    result = run("filter_spatial", data_cube=cube, geometries=triangle)
    # Then
    np.testing.assert_allclose(result["x"].values, [600015, 600025, 600035, 600045])
    np.testing.assert_allclose(result["y"].values, [4999985, 4999975, 4999965, 4999955])
    # and the pixels whose centre is on or in the triangle keep their values (including no-data), others are NaN
    xs, ys = np.meshgrid(result["x"].values, result["y"].values)
    inside = (xs - 600010) + (4999990 - ys) <= 40
    source = cube.values[..., 1:5, 1:5]
    np.testing.assert_array_equal(result.values, np.where(inside, source, np.nan))


# --- mask_polygon ---------------------------------------------------------------------------------

@pytest.mark.parametrize("inside", [False, True])
def test_mask_polygon_inside_and_outside(cube, inside):
    # Given a box covering cols 2..4, rows 1..3
    box = utm_box(600020, 4999960, 600050, 4999990)
    # When
    result = run("mask_polygon", data_cube=cube, mask=box, inside=inside, replacement=-1)
    # Then the replaced pixels are -1, the others and no-data pixels unchanged
    covered = np.zeros((8, 10), dtype=bool)
    covered[1:4, 2:5] = True
    replaced = covered if inside else ~covered
    expected = np.where(replaced & ~np.isnan(cube.values), -1.0, cube.values)
    np.testing.assert_array_equal(result.values, expected)
    assert cubes.grid_of(result) == cubes.grid_of(cube)


def test_mask_polygon_defaults_to_nodata_outside(cube):
    box = utm_box(600020, 4999960, 600050, 4999990)
    result = run("mask_polygon", data_cube=cube, mask={"type": "Feature", "properties": {}, "geometry": box})
    assert np.isnan(result.values[..., 5:, :]).all()
    np.testing.assert_array_equal(result.values[..., 1:4, 2:5], cube.values[..., 1:4, 2:5])


def test_mask_polygon_needs_polygons(cube):
    with pytest.raises(ProcessParameterInvalidException, match="Polygon"):
        run("mask_polygon", data_cube=cube, mask={"type": "Point", "coordinates": [10.27, 45.14]})


# --- apply_kernel ---------------------------------------------------------------------------------

def test_apply_kernel_3x3_mean(cube):
    # When
    result = run("apply_kernel", data_cube=cube, kernel=[[1, 1, 1]] * 3, factor=1 / 9, border="replicate")
    # Then each pixel is the mean of its 3 × 3 neighbourhood (edges replicated, no-data as 0)
    values = np.nan_to_num(cube.values, nan=0.0)
    padded = np.pad(values, [(0, 0), (0, 0), (1, 1), (1, 1)], mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(-2, -1))
    np.testing.assert_allclose(result.values, windows.mean(axis=(-2, -1)), rtol=1e-12)
    assert result.dims == cube.dims and cubes.grid_of(result) == cubes.grid_of(cube)


def test_apply_kernel_is_a_correlation_with_zero_border():
    # Given a single bright pixel and an asymmetric kernel
    values = np.zeros((1, 3, 3))
    values[0, 1, 1] = 1
    cube = cubes.make_cube(values, grid=small_grid(3, 3), times=[utc(2022, 6, 1)])
    # When
    result = run("apply_kernel", data_cube=cube, kernel=[[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    # Then output(r, c) = sum kernel[i, j] * input(r + i - 1, c + j - 1)
    np.testing.assert_array_equal(result.values[0], [[9, 8, 7], [6, 5, 4], [3, 2, 1]])


def test_apply_kernel_needs_uneven_dimensions(cube):
    with pytest.raises(KernelDimensionsUnevenException):
        run("apply_kernel", data_cube=cube, kernel=[[1, 1, 1], [1, 1, 1]])


# --- resampling -----------------------------------------------------------------------------------

def test_resample_spatial_to_20_m_average(cube):
    # When
    result = run("resample_spatial", data_cube=cube, resolution=20, method="average")
    # Then each 20 m pixel is the mean of the valid 10 m pixels it covers
    grid = cubes.grid_of(result)
    assert grid.transform == Affine(20, 0, WEST, 0, -20, NORTH) and grid.shape == (4, 5)
    blocks = cube.values.reshape(2, 2, 4, 2, 5, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmean(blocks, axis=(3, 5))
    np.testing.assert_allclose(result.values, expected, rtol=1e-12)
    assert list(result["bands"].values) == ["B04", "B08"] and result.sizes["t"] == 2


def test_resample_spatial_covers_the_extent_from_the_aligned_corner(cube):
    # When 10 × 8 px at 10 m go to 30 m, aligned at the lower-right corner
    result = run("resample_spatial", data_cube=cube, resolution=30, align="lower-right", method="max")
    # Then 4 × 3 px whose lower-right corner is the cube's
    grid = cubes.grid_of(result)
    assert grid.shape == (3, 4)
    west, south, east, north = grid.bounds
    assert (east, south) == (WEST + 100, NORTH - 80)


def test_resample_spatial_to_another_projection(cube):
    # When
    result = run("resample_spatial", data_cube=cube, projection=32633, method="near")
    # Then the cube is in UTM 33N at the same 10 m, and each pixel holds the value of the source pixel
    # under its centre
    grid = cubes.grid_of(result)
    assert grid.crs == CRS.from_epsg(32633) and grid.resolution == (10.0, 10.0)
    xs, ys = pixel_centres(grid)
    source_x, source_y = (np.array(v) for v in transform("EPSG:32633", UTM32, xs.ravel(), ys.ravel()))
    cols, rows = np.floor((source_x - WEST) / 10).astype(int), np.floor((NORTH - source_y) / 10).astype(int)
    on_cube = (cols >= 0) & (cols < 10) & (rows >= 0) & (rows < 8)
    assert on_cube.sum() > 60
    got = result.values.reshape(2, 2, -1)[..., on_cube]
    np.testing.assert_array_equal(got, cube.values[..., rows[on_cube], cols[on_cube]])
    assert np.isnan(result.values.reshape(2, 2, -1)[..., ~on_cube]).all()


def test_resample_cube_spatial_onto_a_coarser_shifted_grid(cube):
    # Given a target cube on a 20 m grid shifted by 10 m
    target_grid = Grid(CRS.from_epsg(32632), Affine(20, 0, WEST + 10, 0, -20, NORTH - 10), 4, 3)
    target = cubes.make_cube(np.zeros((3, 4)), grid=target_grid)
    # When
    result = run("resample_cube_spatial", data_cube=cube, target_cube=target, method="min")
    # Then the result has the target's grid and the minimum of the 2 × 2 source pixels under each pixel
    assert cubes.grid_of(result) == target_grid
    assert result.dims == cube.dims
    blocks = cube.values[..., 1:7, 1:9].reshape(2, 2, 3, 2, 4, 2)
    np.testing.assert_allclose(result.values, np.nanmin(blocks, axis=(3, 5)))


def test_resample_cube_spatial_onto_the_same_grid_changes_nothing(cube):
    result = run("resample_cube_spatial", data_cube=cube, target_cube=cube.isel(t=0, bands=0), method="bilinear")
    assert result is cube


# --- vector cube serialisers ----------------------------------------------------------------------

@pytest.fixture
def vector_cube():
    features = parse_geojson({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "f1", "properties": {"name": "a"},
         "geometry": {"type": "Point", "coordinates": [10.5, 45.5]}},
        {"type": "Feature", "properties": {}, "geometry": None}]})
    values = np.array([[[1.0, 2.0], [3.0, np.nan]], [[np.nan, np.nan], [np.nan, np.nan]]])
    return vectors.make_vector_cube(
        features, values, dims=["t", "bands"],
        coords={"t": np.array(["2022-06-01", "2022-06-11"], dtype="datetime64[ns]"), "bands": ["B04", "B08"]})


def test_to_geojson_flattens_values_into_properties(vector_cube):
    # When
    collection = vectors.to_geojson(vector_cube)
    # Then
    assert json.loads(json.dumps(collection, allow_nan=False)) == {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "f1", "geometry": {"type": "Point", "coordinates": [10.5, 45.5]},
         "properties": {"name": "a", "2022-06-01T00:00:00Z~B04": 1.0, "2022-06-01T00:00:00Z~B08": 2.0,
                        "2022-06-11T00:00:00Z~B04": 3.0, "2022-06-11T00:00:00Z~B08": None}},
        {"type": "Feature", "id": 1, "geometry": None,
         "properties": {"2022-06-01T00:00:00Z~B04": None, "2022-06-01T00:00:00Z~B08": None,
                        "2022-06-11T00:00:00Z~B04": None, "2022-06-11T00:00:00Z~B08": None}}]}


def test_to_geojson_of_a_geometry_only_cube_uses_value():
    features = Features((shapely.Point(1, 2),), ({},), (None,), WGS84)
    cube = vectors.make_vector_cube(features, np.array([7.5]))
    assert vectors.to_geojson(cube)["features"][0]["properties"] == {"value": 7.5}


def test_to_json_is_nested_with_labels(vector_cube):
    document = vectors.to_json(vector_cube)
    assert json.loads(json.dumps(document, allow_nan=False)) == {
        "dimensions": ["geometry", "t", "bands"],
        "labels": {"geometry": [0, 1], "t": ["2022-06-01T00:00:00Z", "2022-06-11T00:00:00Z"], "bands": ["B04", "B08"]},
        "geometries": [{"type": "Point", "coordinates": [10.5, 45.5]}, None],
        "properties": [{"name": "a"}, {}],
        "data": [[[1.0, 2.0], [3.0, None]], [[None, None], [None, None]]],
    }


def test_aggregate_spatial_result_serialises(cube):
    result = run("aggregate_spatial", data_cube=cube, geometries=utm_box(WEST, NORTH - 20, WEST + 30, NORTH),
                 reducer=reducer("mean"), target_dimension="stats")
    collection = vectors.to_geojson(result)
    properties = collection["features"][0]["properties"]
    assert len(properties) == 2 * 2 * 3 and properties["2022-06-01T00:00:00Z~B04~total_count"] == 6.0
    assert collection["features"][0]["geometry"]["type"] == "Polygon"
    assert vectors.to_json(result)["dimensions"] == ["geometry", "t", "bands", "stats"]
