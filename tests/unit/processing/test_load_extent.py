"""The extent of a load is what the graph really needs: filters downstream narrow its area, time and
bands before the size guard and before any read (demo collection on disk, numpy expectations)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
import shapely
import stratus_processing.processes  # noqa: F401  (registers the processes)
from rasterio.warp import transform_geom
from stratus.errors import ProcessParameterInvalidException
from stratus_processing import cube as cubes
from stratus_processing import vector_cube as vectors
from stratus_processing.env import EvalEnv
from stratus_processing.geometry import covered_pixels, parse_geojson
from stratus_processing.graph import evaluate_graph
from stratus_processing.runner import evaluate

from tests.unit.processing.processing_testkit import BOLZANO_EXTENT, JUNE_2022, reference_mean_ndvi
from tests.unit.processing.test_processing_io import demo_items, load, read_source

DEMO = "sentinel-2-l2a-demo"
BOLZANO_WGS84 = dict(zip(("west", "south", "east", "north"),
                         rasterio.warp.transform_bounds(32632, 4326, *(BOLZANO_EXTENT[k] for k in
                                                                        ("west", "south", "east", "north")))))


def node(process_id, result=False, **arguments):
    return {"process_id": process_id, "arguments": arguments, **({"result": True} if result else {})}


def ref(node_id):
    return {"from_node": node_id}


def callback(process_id, **arguments):
    return {"process_graph": {"c": node(process_id, result=True, **arguments)}}


MEAN_OVER_T = callback("mean", data={"from_parameter": "data"})


def load_logs(reporter):
    return [e["message"] for e in reporter.logs if e["message"].startswith(("load_collection", "load_stac"))]


# --- load_collection(...).filter_temporal(...).filter_bbox(...) ---------------------------------

def test_filter_temporal_and_filter_bbox_after_an_open_load_give_the_numpy_mean_ndvi(demo_env, demo_s3,
                                                                                      result_store, reporter):
    # Given a load of everything (both areas, all dates: far beyond the load limit on its own),
    # narrowed later by filter_temporal and filter_bbox
    graph = {
        "load": node("load_collection", id=DEMO, spatial_extent=None, temporal_extent=None, bands=["B04", "B08"]),
        "time": node("filter_temporal", data=ref("load"), extent=JUNE_2022),
        "area": node("filter_bbox", data=ref("time"), extent=BOLZANO_EXTENT),
        "ndvi": node("ndvi", data=ref("area")),
        "mean": node("reduce_dimension", data=ref("ndvi"), dimension="t", reducer=MEAN_OVER_T),
        "save": node("save_result", result=True, data=ref("mean"), format="GTiff"),
    }
    # When it runs (tiled, as the runner does)
    evaluate({"process_graph": graph}, demo_env)
    # Then the load read only the filters' area and month, and the values are numpy's on the source COGs
    # (in float32, as the engine computes a graph that stores a float32 raster of 16-bit sources)
    [logged] = load_logs(reporter)
    assert "96 × 84 px" in logged and "2022-06-01T00:00:00Z to 2022-07-01T00:00:00Z" in logged
    expected = reference_mean_ndvi(lambda href: read_source(demo_s3, href), demo_items(demo_s3), BOLZANO_EXTENT,
                                   dtype=np.float32)
    with rasterio.open(result_store.path_of(result_store.assets[0].key)) as src:
        actual = src.read(1)
    np.testing.assert_array_equal(actual, expected.astype("float32"))


def test_narrowed_load_equals_the_filtered_whole_cube(demo_env):
    # Given the same filters after a load of a larger area (small enough to load whole)
    larger = {**BOLZANO_EXTENT, "west": BOLZANO_EXTENT["west"] - 200, "north": BOLZANO_EXTENT["north"] + 300}
    graph = {
        "load": node("load_collection", id=DEMO, spatial_extent=larger, temporal_extent=JUNE_2022,
                     bands=["B04", "B08", "SCL"]),
        "area": node("filter_bbox", data=ref("load"), extent=BOLZANO_WGS84),
        "bands": node("filter_bands", data=ref("area"), bands=["SCL", "B04"], result=True),
    }
    # When
    narrowed = evaluate_graph(graph, demo_env)
    # Then it equals filtering the whole loaded cube (bands: in the load's order; SCL on the 10 m grid)
    whole = load(demo_env, spatial_extent=larger, bands=["B04", "B08", "SCL"])
    filtered = evaluate_graph({"cube": node("filter_bbox", result=True, data=whole, extent=BOLZANO_WGS84)},
                              EvalEnv()).sel(bands=["SCL", "B04"])
    assert list(narrowed["bands"].values) == ["SCL", "B04"]
    assert cubes.grid_of(narrowed) == cubes.grid_of(filtered)
    np.testing.assert_array_equal(narrowed.values, filtered.values)


def test_the_load_reads_only_the_bands_the_graph_keeps(demo_env, reporter):
    graph = {
        "load": node("load_collection", id=DEMO, spatial_extent=BOLZANO_EXTENT, temporal_extent=JUNE_2022,
                     bands=["B02", "B04", "B08", "SCL"]),
        "red": node("filter_bands", data=ref("load"), bands=["red"], result=True),
    }
    cube = evaluate_graph(graph, demo_env)
    [logged] = load_logs(reporter)
    assert "bands B04 for" in logged and "96 × 84 px" in logged
    assert list(cube["bands"].values) == ["B04"]


def test_paths_that_need_different_areas_load_their_union(demo_env, reporter):
    # Given two outputs of one load: the west half and the north half of the extent
    west, south, east, north = (BOLZANO_EXTENT[k] for k in ("west", "south", "east", "north"))
    west_half = {**BOLZANO_EXTENT, "east": (west + east) / 2}
    north_half = {**BOLZANO_EXTENT, "south": (south + north) / 2}
    graph = {
        "load": node("load_collection", id=DEMO, spatial_extent=None, temporal_extent=JUNE_2022, bands=["B04"]),
        "a": node("filter_bbox", data=ref("load"), extent=west_half),
        "b": node("filter_bbox", data=ref("load"), extent=north_half),
        "merged": node("merge_cubes", cube1=ref("a"), cube2=ref("b"), overlap_resolver=callback(
            "max", data=[{"from_parameter": "x"}, {"from_parameter": "y"}]), result=True),
    }
    # When
    cube = evaluate_graph(graph, demo_env)
    # Then the load covered both halves: the whole extent
    [logged] = load_logs(reporter)
    assert "96 × 84 px" in logged
    assert cubes.grid_of(cube).width == 96 and cubes.grid_of(cube).height == 84


def test_a_path_without_filter_keeps_the_loads_own_extent(demo_env, reporter):
    graph = {
        "load": node("load_collection", id=DEMO, spatial_extent=BOLZANO_EXTENT, temporal_extent=JUNE_2022,
                     bands=["B04"]),
        "area": node("filter_bbox", data=ref("load"), extent={**BOLZANO_EXTENT, "east": BOLZANO_EXTENT["west"] + 100}),
        "whole": node("save_result", data=ref("load"), format="GTiff"),
        "part": node("save_result", data=ref("area"), format="GTiff", result=True),
    }
    evaluate_graph(graph, demo_env)
    [logged] = load_logs(reporter)
    assert "96 × 84 px" in logged


# --- the official client docs' "EVI timeseries" UDP ---------------------------------------------

def evi_timeseries_udp():
    """The UDP of the openeo client docs: no spatial_extent, the area comes from aggregate_spatial."""
    b02, b04, b08 = ({"process_id": "array_element", "arguments": {"data": {"from_parameter": "data"}, "label": b}}
                     for b in ("B02", "B04", "B08"))
    evi = {
        "blue": b02, "red": b04, "nir": b08,
        "num": node("subtract", x=ref("nir"), y=ref("red")),
        "num25": node("multiply", x=2.5, y=ref("num")),
        "red6": node("multiply", x=6.0, y=ref("red")),
        "blue75": node("multiply", x=7.5, y=ref("blue")),
        "d1": node("add", x=ref("nir"), y=ref("red6")),
        "d2": node("subtract", x=ref("d1"), y=ref("blue75")),
        "den": node("add", x=ref("d2"), y=1.0),
        "evi": node("divide", x=ref("num25"), y=ref("den"), result=True),
    }
    return {
        "parameters": [{"name": "temporal_extent", "schema": {"type": "array", "subtype": "temporal-interval"},
                        "default": ["2018-06-15", "2018-06-27"]},
                       {"name": "geometry", "schema": {"type": "object", "subtype": "geojson"}}],
        "process_graph": {
            "load": node("load_collection", id=DEMO, spatial_extent=None,
                         temporal_extent={"from_parameter": "temporal_extent"}, bands=["B02", "B04", "B08"]),
            "evi": node("reduce_dimension", data=ref("load"), dimension="bands", reducer={"process_graph": evi}),
            "agg": node("aggregate_spatial", data=ref("evi"), geometries={"from_parameter": "geometry"},
                        reducer=MEAN_OVER_T, result=True),
        },
    }


def test_the_evi_timeseries_udp_takes_its_area_from_aggregate_spatial(demo_env, reporter):
    # Given a field inside the Bolzano extent, as WGS84 GeoJSON (as a client sends it)
    west, south, east, north = (BOLZANO_EXTENT[k] for k in ("west", "south", "east", "north"))
    field_utm = shapely.Polygon([(west + 105, south + 95), (east - 230, south + 160), (east - 310, north - 125),
                                 (west + 160, north - 205)])
    field = transform_geom(32632, 4326, shapely.geometry.mapping(field_utm))
    env = EvalEnv(catalog=demo_env.catalog, rasters=demo_env.rasters, results=demo_env.results, reporter=reporter,
                  user_processes={"evi_timeseries": evi_timeseries_udp()})
    # When the UDP is called as datacube_from_process builds it
    result = evaluate_graph({"evi": node("evi_timeseries", result=True, temporal_extent=JUNE_2022, geometry=field)},
                            env)
    # Then the load read only the field's bounding box
    [logged] = load_logs(reporter)
    assert "6 items" in logged and "× 84 px" not in logged
    # And the values are numpy's mean EVI over the pixels of the whole extent's cube whose centre
    # lies in the field (as aggregate_spatial reprojects it)
    assert vectors.is_vector_cube(result) and result.sizes["geometry"] == 1
    cube = load(demo_env, bands=["B02", "B04", "B08"])
    grid = cubes.grid_of(cube)
    inside = covered_pixels(parse_geojson(field).to_crs(grid.crs).geometries, grid)
    assert inside.sum() > 100
    blue, red, nir = (cube.sel(bands=b).values[:, inside] for b in ("B02", "B04", "B08"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmean(2.5 * (nir - red) / (nir + 6.0 * red - 7.5 * blue + 1.0), axis=-1)
    np.testing.assert_allclose(result.values.reshape(-1), expected, rtol=1e-12)


# --- the size guard ------------------------------------------------------------------------------

def test_the_size_guard_names_the_filter_that_set_the_area(demo_env):
    # Given an open load narrowed by a filter_bbox over both demo areas (far too large together)
    graph = {
        "load": node("load_collection", id=DEMO, spatial_extent=None, temporal_extent=None),
        "area": node("filter_bbox", data=ref("load"), extent={"west": 11.0, "south": 46.0, "east": 17.0,
                                                               "north": 48.5}, result=True),
    }
    with pytest.raises(ProcessParameterInvalidException) as raised:
        evaluate_graph(graph, demo_env)
    message = raised.value.message
    assert "GiB" in message and "filter_bbox 'area'" in message
    assert "spatial_extent" not in message and "'extent' in process 'filter_bbox'" in message


def test_the_size_guard_still_blames_a_spatial_extent_the_user_gave(demo_env):
    with pytest.raises(ProcessParameterInvalidException) as raised:
        load(demo_env, spatial_extent={"west": 11.0, "south": 46.0, "east": 17.0, "north": 48.5},
             temporal_extent=None)
    assert "'spatial_extent' in process 'load_collection'" in raised.value.message


def test_a_kernel_before_the_filter_keeps_the_whole_extent(demo_env):
    # apply_kernel needs the pixels around the box: no narrowing, so the open load is refused
    graph = {
        "load": node("load_collection", id=DEMO, spatial_extent=None, temporal_extent=None, bands=["B04"]),
        "kernel": node("apply_kernel", data=ref("load"), kernel=[[1, 1, 1], [1, 1, 1], [1, 1, 1]]),
        "area": node("filter_bbox", data=ref("kernel"), extent=BOLZANO_EXTENT, result=True),
    }
    with pytest.raises(ProcessParameterInvalidException, match="whole footprint"):
        evaluate_graph(graph, demo_env)
