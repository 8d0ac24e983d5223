"""Tiled execution: which graphs qualify, tiles, and above all that tiled and whole-cube evaluation
give identical outputs on the demo data (tiles of 32 px, so the 96 × 84 px extent is 3 × 3 tiles
with ragged edges)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import rasterio
import stratus_processing.processes  # noqa: F401  (registers the processes)
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from stratus_processing import ml
from stratus_processing.env import EvalEnv
from stratus_processing.errors import BandExistsException, node_path
from stratus_processing.graph import ProcessGraph
from stratus_processing.grid import Grid
from stratus_processing.io.cog import RasterReader
from stratus_processing.io.stac import S3JsonStore, StacCatalog
from stratus_processing.manifest import build_manifest
from stratus_processing.reporting import RecordingReporter
from stratus_processing.results import DirectoryResultStore
from stratus_processing.runner import evaluate
from stratus_processing.tiling import (
    READ_AHEAD_BATCHES,
    READ_AHEAD_TILES,
    TILE_LOAD_BUDGET_BYTES,
    TILE_LOAD_CAP_BYTES,
    TileBudget,
    batches_ahead,
    choose_tile_size,
    read_ahead_batches,
    run_tiled,
    tile_grids,
    tiles_per_batch,
    tiling_obstacle,
)

from tests.unit.processing.conftest import DEMO_BUCKET
from tests.unit.processing.processing_testkit import BOLZANO_EXTENT, JUNE_2022, RecordingReader

TILE = 32


def load_node(bands=("B04", "B08"), **arguments):
    return {"process_id": "load_collection", "arguments": {
        "id": "sentinel-2-l2a-demo", "spatial_extent": BOLZANO_EXTENT, "temporal_extent": JUNE_2022,
        "bands": list(bands), **arguments}}


def reducer(process_id, **arguments):
    return {"process_graph": {"r": {"process_id": process_id, "result": True,
                                    "arguments": {"data": {"from_parameter": "data"}, **arguments}}}}


def save_node(source, fmt="GTiff", result=True, **options):
    node = {"process_id": "save_result", "arguments": {"data": {"from_node": source}, "format": fmt}}
    if options:
        node["arguments"]["options"] = options
    if result:
        node["result"] = True
    return node


def ndvi_mean():
    return {"process_graph": {
        "load": load_node(),
        "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}}},
        "mean": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "ndvi"}, "dimension": "t", "reducer": reducer("mean")}},
        "save": save_node("mean"),
    }}


def band_math_max_and_netcdf():
    """The openeo client's band math through reduce_dimension(bands), then max over t as GTiff and
    the per-date index as netCDF: two outputs."""
    def element(label):
        return {"process_id": "array_element", "arguments": {"data": {"from_parameter": "data"}, "label": label}}
    return {"process_graph": {
        "load": load_node(),
        "index": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "load"}, "dimension": "bands", "reducer": {"process_graph": {
                "nir": element("B08"), "red": element("B04"),
                "d": {"process_id": "subtract", "arguments": {"x": {"from_node": "nir"}, "y": {"from_node": "red"}}},
                "s": {"process_id": "add", "arguments": {"x": {"from_node": "nir"}, "y": {"from_node": "red"}}},
                "q": {"process_id": "divide", "arguments": {"x": {"from_node": "d"}, "y": {"from_node": "s"}},
                      "result": True}}}}},
        "max": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "index"}, "dimension": "t", "reducer": reducer("max")}},
        "save_nc": save_node("index", "netCDF", result=False),
        "save_tif": save_node("max"),
    }}


def scaled_per_date_without_save():
    return {"process_graph": {
        "load": load_node(bands=("B08",)),
        "scaled": {"process_id": "apply", "result": True, "arguments": {
            "data": {"from_node": "load"}, "process": {"process_graph": {"s": {
                "process_id": "linear_scale_range", "result": True, "arguments": {
                    "x": {"from_parameter": "x"}, "inputMin": 0, "inputMax": 0.6, "outputMin": 0,
                    "outputMax": 255}}}}}},
    }}


def make_env(demo_s3, root, rasters=None) -> EvalEnv:
    return EvalEnv(catalog=StacCatalog(S3JsonStore(demo_s3, DEMO_BUCKET)),
                   rasters=rasters or RasterReader(resolve_href=demo_s3.resolve_href),
                   results=DirectoryResultStore(root), reporter=RecordingReporter())


def read_outputs(store: DirectoryResultStore) -> dict[str, np.ndarray]:
    outputs = {}
    for asset in store.assets:
        path = store.path_of(asset.key)
        if asset.name.endswith(".nc"):
            with xr.open_dataset(path, engine="netcdf4") as dataset:
                outputs.update({f"{asset.name}:{name}": dataset[name].values for name in dataset.data_vars
                                if name != "crs"})
        else:
            with rasterio.open(path) as src:
                outputs[asset.name] = src.read()
    return outputs


@pytest.mark.parametrize("process", [ndvi_mean(), band_math_max_and_netcdf(), scaled_per_date_without_save()],
                         ids=["ndvi-mean", "band-math-two-outputs", "apply-no-save"])
def test_tiled_and_whole_cube_outputs_are_identical(demo_s3, tmp_path, process):
    # Given the same process evaluated tile by tile and on the whole cube
    tiled_env = make_env(demo_s3, tmp_path / "tiled")
    whole_env = make_env(demo_s3, tmp_path / "whole")
    # When
    evaluate(process, tiled_env, tile_size=TILE)
    assert any(e["message"].startswith("Tiled execution: 9 tile(s)") for e in tiled_env.reporter.logs)
    evaluate(process, whole_env, tiling=False)
    assert not any(e["message"].startswith("Tiled") for e in whole_env.reporter.logs)
    # Then the same files, values (bit for bit, NaN where NaN) and metadata
    tiled, whole = read_outputs(tiled_env.results), read_outputs(whole_env.results)
    assert list(tiled) == list(whole)
    for name in whole:
        np.testing.assert_array_equal(tiled[name], whole[name], err_msg=name)
    tiled_manifest, whole_manifest = (build_manifest(env.results.assets).to_json() for env in (tiled_env, whole_env))
    assert tiled_manifest["properties"] == whole_manifest["properties"]
    for name, asset in whole_manifest["assets"].items():
        mine = tiled_manifest["assets"][name]
        for key in ("proj:shape", "proj:transform", "proj:epsg", "datetime", "eo:bands", "type"):
            assert mine.get(key) == asset.get(key), (name, key)
        for ours, theirs in zip(mine["raster:bands"], asset["raster:bands"], strict=True):
            assert ours["statistics"] == pytest.approx(theirs["statistics"], rel=1e-9)


def test_tiles_read_only_their_window_of_local_files_without_read_ahead(demo_s3, tmp_path):
    # Given a reader that records what it reads and fetches ahead (the demo COGs are local files here)
    reader = RecordingReader(resolve_href=demo_s3.resolve_href)
    env = make_env(demo_s3, tmp_path, reader)
    # When
    evaluate(ndvi_mean(), env, tile_size=TILE)
    # Then every read is one tile (6 dates × 2 bands × 9 tiles), none larger than a tile
    grids = reader.read_grids
    assert len(grids) == 6 * 2 * 9
    assert max(g.width for g in grids) == TILE and max(g.height for g in grids) == TILE
    assert {(g.width, g.height) for g in grids} == {(32, 32), (32, 20)}
    # And each tile read its own windows: nothing was fetched ahead, nothing kept
    assert reader.prefetched == [] and reader.kept_bytes == 0
    # And the progress advanced per tile
    assert env.reporter.fractions == sorted(env.reporter.fractions) and env.reporter.fractions[-1] == 1.0


def test_assets_on_gdal_network_file_systems_are_remote():
    reader = RasterReader()
    assert all(reader.is_remote(href) for href in ("s3://bucket/B04.tif", "https://example.com/B04.tif",
                                                   "/vsizip//vsicurl/https://example.com/a.zip/B04.tif"))
    assert not any(reader.is_remote(href) for href in ("/data/B04.tif", "B04.tif", "/vsimem/B04.tif"))
    # What counts is where GDAL reads: the test stand-in for S3 serves local files
    assert not RasterReader(resolve_href=lambda href: "/tmp/B04.tif").is_remote("s3://bucket/B04.tif")


def test_errors_in_a_tile_carry_the_node_and_leave_no_output(demo_s3, tmp_path):
    process = ndvi_mean()
    process["process_graph"]["ndvi"]["arguments"]["target_band"] = "B04"  # exists: BandExists
    env = make_env(demo_s3, tmp_path)
    with pytest.raises(BandExistsException) as caught:
        evaluate(process, env, tile_size=TILE)
    assert node_path(caught.value)[0]["node_id"] == "ndvi"
    assert env.results.assets == [] and not (tmp_path / "result.tif").exists()


def test_a_non_cube_result_falls_back_to_whole_cube_evaluation(demo_s3, tmp_path):
    # Given a graph without save_result whose result is not a raster cube
    process = {"process_graph": {"load": load_node(),
                                 "labels": {"process_id": "dimension_labels", "result": True,
                                            "arguments": {"data": {"from_node": "load"}, "dimension": "t"}}}}
    env = make_env(demo_s3, tmp_path)
    # When evaluating it
    evaluate(process, env, tile_size=TILE)
    # Then tiling gives up and says why, and the whole-cube result (the dates) is saved as JSON
    assert any("Evaluating the whole cube at once: the data to save is not a raster data cube" in e["message"]
               for e in env.reporter.logs)
    (asset,) = env.results.assets
    labels = json.loads(env.results.path_of(asset.key).read_text())
    assert asset.name == "result.json" and labels and all(label.startswith("2022-") for label in labels)


def test_loads_on_different_grids_are_not_tiled(demo_s3, tmp_path):
    # B04 loads at 10 m, SCL alone at 20 m
    process = {"process_graph": {
        "a": load_node(bands=("B04",)), "b": load_node(bands=("SCL",)),
        "sa": save_node("a", result=False), "sb": save_node("b")}}
    outcome = run_tiled(process, make_env(demo_s3, tmp_path))
    assert not outcome.ran and outcome.reason == "the loaded cubes lie on different grids"


# --- which graphs ---------------------------------------------------------------------------------

class CountingResultStore(DirectoryResultStore):
    def __init__(self, root):
        super().__init__(root)
        self.reads = 0

    def read_bytes(self, key):
        self.reads += 1
        return super().read_bytes(key)


def land_cover_from_a_saved_model():
    """A saved model's class per pixel and date (from B04 and B08), then the largest over t."""
    return {"process_graph": {
        "load": load_node(),
        "model": {"process_id": "load_ml_model", "arguments": {"id": "j-model"}},
        "classes": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "load"}, "dimension": "bands", "context": {"from_node": "model"},
            "reducer": reducer("predict_random_forest", model={"from_parameter": "context"})}},
        "max": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "classes"}, "dimension": "t", "reducer": reducer("max")}},
        "save": save_node("max"),
    }}


def test_random_forest_prediction_runs_tiled_with_the_model_read_once(demo_s3, tmp_path):
    # Given a model saved by an earlier job: vegetation (B08 well above B04) or not
    rng = np.random.default_rng(0)
    reflectances = rng.uniform(0, 0.5, (400, 2))
    model = ml.fit(ml.CLASSIFICATION, reflectances, (reflectances[:, 1] > 1.5 * reflectances[:, 0]).astype(int),
                   ["B04", "B08"], max_variables=None, num_trees=5, seed=0)
    envs = {}
    for mode in ("tiled", "whole"):
        store = CountingResultStore(tmp_path / mode)
        store.path_of("models/model.skops").parent.mkdir(parents=True)
        store.path_of("models/model.skops").write_bytes(ml.dumps(model))
        envs[mode] = replace(make_env(demo_s3, tmp_path / mode), results=store,
                             ml_models={"j-model": {"key": "models/model.skops"}})
    # When the prediction graph runs tile by tile and on the whole cube
    process = land_cover_from_a_saved_model()
    assert obstacle(process) is None
    evaluate(process, envs["tiled"], tile_size=TILE)
    evaluate(process, envs["whole"], tiling=False)
    # Then tiles (9 of them) read the model once, and the maps are identical, with both classes in them
    assert any(e["message"].startswith("Tiled execution: 9 tile(s)") for e in envs["tiled"].reporter.logs)
    assert envs["tiled"].results.reads == 1
    tiled, whole = read_outputs(envs["tiled"].results), read_outputs(envs["whole"].results)
    assert list(tiled) == list(whole)
    [name] = whole
    np.testing.assert_array_equal(tiled[name], whole[name])
    assert set(np.unique(whole[name][np.isfinite(whole[name])])) == {0, 1}


def obstacle(process):
    return tiling_obstacle(ProcessGraph(process["process_graph"]))


def test_pixel_local_graphs_qualify():
    assert obstacle(ndvi_mean()) is None
    assert obstacle(band_math_max_and_netcdf()) is None
    assert obstacle(scaled_per_date_without_save()) is None


@pytest.mark.parametrize("change, reason", [
    (lambda g: g["mean"].update(process_id="apply_kernel"), "'apply_kernel' is not pixel-local"),
    (lambda g: g["mean"]["arguments"].update(dimension="x"), "works along dimension 'x'"),
    (lambda g: g["save"]["arguments"].update(format="JSON"), "format 'JSON' is not written by tile"),
    (lambda g: g["save"]["arguments"].update(format={"from_parameter": "f"}), "is not written by tile"),
    (lambda g: g["ndvi"].update(namespace="user"), "namespace 'user'"),
    (lambda g: g["load"]["arguments"].update(spatial_extent={"from_node": "ndvi"}), "depend on other nodes"),
    (lambda g: g["mean"]["arguments"]["reducer"]["process_graph"]["r"].update(process_id="resample_spatial"),
     "'resample_spatial' is not pixel-local"),
    (lambda g: g["mean"]["arguments"]["reducer"]["process_graph"]["r"].update(process_id="load_collection"),
     "'load_collection' inside a callback"),
])
def test_other_graphs_are_evaluated_whole(change, reason):
    process = ndvi_mean()
    change(process["process_graph"])
    assert reason in obstacle(process)


def test_a_graph_without_loads_is_not_tiled():
    assert obstacle({"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2},
                                             "result": True}}}) == "the graph loads no data"


# --- tiles ----------------------------------------------------------------------------------------

def test_tiles_cover_the_grid_exactly():
    grid = Grid(CRS.from_epsg(32633), Affine(10, 0, 600000, 0, -10, 5400000), 2500, 1100)
    tiles = tile_grids(grid, 1024)
    assert len(tiles) == 3 * 2
    assert sum(t.width * t.height for t in tiles) == grid.width * grid.height
    assert tiles[1].transform == Affine(10, 0, 600000 + 10240, 0, -10, 5400000)
    assert (tiles[-1].width, tiles[-1].height) == (2500 - 2048, 1100 - 1024)


def test_read_ahead_batches_are_runs_of_neighbouring_tiles_in_a_row():
    # Given 6 × 2 tiles of 1024 px (the last column and row ragged)
    grid = Grid(CRS.from_epsg(32633), Affine(10, 0, 600000, 0, -10, 5400000), 5 * 1024 + 500, 1100)
    tiles = tile_grids(grid, 1024)
    # When grouped for read-ahead (up to READ_AHEAD_TILES = 4 per batch)
    batches, batch_of = read_ahead_batches(tiles)
    # Then each row gives a batch of 4 tiles and one of the other 2, never across rows
    assert batch_of == [0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3]
    assert [(b.width, b.height) for b in batches] == [(4096, 1024), (1524, 1024), (4096, 76), (1524, 76)]
    # And each batch is exactly the window its tiles cover
    for index, batch in enumerate(batches):
        members = [t for t, b in zip(tiles, batch_of, strict=True) if b == index]
        assert batch.transform == members[0].transform
        assert batch.width * batch.height == sum(t.width * t.height for t in members)


def test_tile_size_shrinks_with_dates_and_bands(demo_s3):
    from stratus_processing.io.load import LoadPlan

    grid = Grid(CRS.from_epsg(32633), Affine(10, 0, 0, 0, -10, 0), 10980, 10980)

    def plan(days, bands):
        return LoadPlan(grid, tuple(range(bands)), tuple(() for _ in range(days)), True, {})

    assert choose_tile_size([plan(4, 2)]) == 1024  # 64 MiB of float64 per 1024 px tile
    assert choose_tile_size([plan(8, 2)]) == 1024  # 128 MiB: the cap
    assert choose_tile_size([plan(12, 2)]) == 512  # 1024 px: 192 MiB, over the cap; 512 px: 48 MiB
    assert choose_tile_size([plan(32, 2)]) == 512  # 128 MiB
    assert choose_tile_size([plan(33, 2)]) == 256  # beyond it smaller tiles, as large as the cap allows:
    assert choose_tile_size([plan(128, 2)]) == 256  # memory is flat from here on
    assert choose_tile_size([plan(129, 2)]) == 128
    assert choose_tile_size([plan(1, 1)]) == 1024
    assert choose_tile_size([plan(100, 12)]) == 64
    assert choose_tile_size([plan(4, 2), plan(60, 4)]) == 256


def test_float32_loads_make_tiles_of_the_area_their_bytes_allow_and_read_ahead_as_float64_ones():
    from stratus_processing.io.load import LoadPlan

    grid = Grid(CRS.from_epsg(32633), Affine(10, 0, 0, 0, -10, 0), 10980, 10980)

    def plan(days, bands, dtype):
        return LoadPlan(grid, tuple(range(bands)), tuple(() for _ in range(days)), True, {}, dtype=np.dtype(dtype))

    # 12 dates × 2 bands: 96 MiB a 1024 px tile in float32 (under the cap), 192 MiB in float64
    assert [choose_tile_size([plan(12, 2, "float32")]), choose_tile_size([plan(12, 2, "float64")])] == [1024, 512]
    # 16 dates: 128 MiB in float32 (the cap); 17: 512 px tiles
    assert [choose_tile_size([plan(16, 2, "float32")]), choose_tile_size([plan(17, 2, "float32")])] == [1024, 512]
    # 64 dates × 2 float32 bands fill the cap at 512 px where float64 needs 256 px tiles
    assert [choose_tile_size([plan(64, 2, "float32")]), choose_tile_size([plan(64, 2, "float64")])] == [512, 256]
    # What a tile holds is counted in its type; the size guard and the read-ahead count float64
    tile = tile_grids(grid, 512)[0]
    single, double = plan(4, 2, "float32"), plan(4, 2, "float64")
    assert single.held_bytes(tile) * 2 == double.held_bytes(tile) == single.size_bytes(tile) == double.size_bytes(tile)
    assert tiles_per_batch([single], tile) == tiles_per_batch([double], tile)
    assert batches_ahead([single], tile) == batches_ahead([double], tile)


def test_tiles_of_a_random_forest_stay_within_the_budget_where_light_graphs_take_the_cap(demo_s3):
    from stratus_processing.io.load import LoadPlan

    grid = Grid(CRS.from_epsg(32633), Affine(10, 0, 0, 0, -10, 0), 10980, 10980)
    predictors = [LoadPlan(grid, tuple(range(40)), ((),), True, {})]  # one date of 40 bands: 320 B/px
    # A prediction graph's per-pixel work outweighs a tile's fixed cost: 256 px tiles (20 MiB), not 512 (80)
    prediction = TileBudget.of(ProcessGraph(land_cover_from_a_saved_model()["process_graph"]))
    assert prediction == TileBudget(TILE_LOAD_BUDGET_BYTES, 1)  # and reads one batch ahead
    assert choose_tile_size(predictors, cap_bytes=prediction.cap_bytes) == 256
    # The same loads under band math keep 512 px tiles up to the cap
    band_math = TileBudget.of(ProcessGraph({"load": load_node(), "save": save_node("load")}))
    assert band_math == TileBudget(TILE_LOAD_CAP_BYTES, READ_AHEAD_BATCHES)
    assert choose_tile_size(predictors, cap_bytes=band_math.cap_bytes) == 512


def test_read_ahead_batches_hold_fewer_tiles_as_dates_and_bands_fill_them():
    from stratus_processing.io.load import LoadPlan

    grid = Grid(CRS.from_epsg(32633), Affine(10, 0, 0, 0, -10, 0), 10980, 10980)

    def plan(days, bands):
        return LoadPlan(grid, tuple(range(bands)), tuple(() for _ in range(days)), True, {})

    def per_batch(days, bands, size=512):
        return tiles_per_batch([plan(days, bands)], tile_grids(grid, size)[0])

    # A batch's tiles hold at most 64 MiB of loaded values (counted as float64): 4 × 16 MiB 512 px tiles at
    # 4 dates × 2 bands, 2 × 32 MiB at 8, one tile of 48 MiB at 12 dates, or a 1024 px tile of 64 MiB at 4
    assert [per_batch(4, 2), per_batch(8, 2), per_batch(12, 2), per_batch(4, 2, 1024)] == [4, 2, 1, 1]
    assert per_batch(1, 1, 1024) == READ_AHEAD_TILES
    batches, _ = read_ahead_batches(tile_grids(grid, 512)[:6], per_batch=2)
    assert [b.width for b in batches] == [1024, 1024, 1024]


def test_fewer_batches_go_ahead_when_a_single_tile_fills_a_batch_beyond_its_budget():
    from stratus_processing.io.load import LoadPlan

    grid = Grid(CRS.from_epsg(32633), Affine(10, 0, 0, 0, -10, 0), 10980, 10980)

    def ahead(days, bands):
        plans = [LoadPlan(grid, tuple(range(bands)), tuple(() for _ in range(days)), True, {})]
        return batches_ahead(plans, tile_grids(grid, choose_tile_size(plans))[0])

    # Batches within their budget go READ_AHEAD_BATCHES ahead (4 dates × 2 bands: one 1024 px tile of
    # 64 MiB, 12 × 2: one 512 px tile of 48 MiB);
    # one 512 px tile of 40 predictors (80 MiB) one batch ahead, of 32 dates × 2 bands (128 MiB) too
    assert [ahead(4, 2), ahead(12, 2), ahead(1, 1)] == [READ_AHEAD_BATCHES] * 3
    assert [ahead(1, 40), ahead(32, 2)] == [1, 1]
