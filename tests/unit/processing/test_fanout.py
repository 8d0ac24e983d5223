"""A fanned-out run (docs/fanout.md) against the single task on the demo collection: the 96 × 84 px
Bolzano grid cut into 24 px tiles (4 × 4 = 16, ragged south edge; an aggregate_spatial graph loads
84 × 84 px, its geometries' extent), every tile step and the combine step run in process on the
directory-backed S3, the outputs compared with the single task's."""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform_geom
from stratus import catalog_layout
from stratus.domain.fanout_plan import RunShape, TaskBudget, TileBounds, TileManifest, tile_windows
from stratus.domain.run_planning import RunPlanner
from stratus.domain.jobs import Job
from stratus.domain.results import job_results
from stratus.events import EventPublisher, JobStatus
from stratus.run_contract import RUN_STEP_ENV, TILE_ID_ENV, ResultsManifest, RunConfig, TileRecord
from stratus.settings import ENV, Settings
from stratus_processing import __main__ as entrypoint
from stratus_processing.combine import EXIT_FAILED, combine_graph, run_combine
from stratus_processing.errors import NoDataAvailableException
from stratus_processing.env import EvalEnv
from stratus_processing.fanout import run_progress, run_tile
from stratus_processing.io.stac import S3JsonStore, StacCatalog
from stratus_processing.io.cog import RasterReader
from stratus_processing.registry import DEFAULT_REGISTRY, ProcessRegistry
from stratus_processing.frozen_loads import loads_from_json
from stratus_processing.run_loads import EngineLoadPlanner
from stratus_processing.runner import EXIT_MISCONFIGURED, EXIT_OK, run_job
from stratus_processing.tiling import plan_loads

from tests.unit.processing.conftest import DEMO_BUCKET
from tests.unit.processing.processing_testkit import BOLZANO_EXTENT, JUNE_2022, RecordingSQS

RESULTS_BUCKET = "results"
STATUS_QUEUE, LOG_QUEUE = "https://sqs/status", "https://sqs/logs"
SETTINGS = Settings(data_bucket=DEMO_BUCKET, results_bucket=RESULTS_BUCKET, status_queue_url=STATUS_QUEUE,
                    log_queue_url=LOG_QUEUE)
EDGE = 24


def load_node(bands=("B04", "B08")):
    return {"process_id": "load_collection", "arguments": {
        "id": "sentinel-2-l2a-demo", "spatial_extent": BOLZANO_EXTENT, "temporal_extent": JUNE_2022,
        "bands": list(bands)}}


def call(process_id, **arguments):
    return {"process_id": process_id, "arguments": {"data": {"from_parameter": "data"}, **arguments}}


def ndvi_mean():
    return {"process_graph": {
        "load": load_node(),
        "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}}},
        "mean": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "ndvi"}, "dimension": "t",
            "reducer": {"process_graph": {"m": {**call("mean"), "result": True}}}}},
        "save": {"process_id": "save_result", "result": True,
                 "arguments": {"data": {"from_node": "mean"}, "format": "GTiff"}}}}


def smoothed_per_date():
    """apply_kernel: a 3 × 3 neighbourhood, so a tile needs a 1 px halo (two dates: two outputs)."""
    load = load_node(("B08",))
    load["arguments"]["temporal_extent"] = ["2022-06-01", "2022-06-10"]
    return {"process_graph": {
        "load": load,
        "smooth": {"process_id": "apply_kernel", "arguments": {
            "data": {"from_node": "load"}, "kernel": [[1, 2, 1], [2, 4, 2], [1, 2, 1]], "factor": 1 / 16,
            "border": "replicate"}},
        "save": {"process_id": "save_result", "result": True,
                 "arguments": {"data": {"from_node": "smooth"}, "format": "GTiff"}}}}


def neighbourhoods():
    """apply_neighborhood in 8 px windows with 1 px of overlap: a 5 × 5 kernel inside each window sees
    its edges, so every pixel depends on where the windows are; a tile needs a 1 px halo."""
    load = load_node(("B08",))
    load["arguments"]["temporal_extent"] = ["2022-06-01", "2022-06-05"]
    px = [{"dimension": d, "value": v, "unit": "px"} for d, v in (("x", 8), ("y", 8))]
    overlap = [{"dimension": d, "value": 1, "unit": "px"} for d in ("x", "y")]
    kernel = {"process_graph": {"k": {"process_id": "apply_kernel", "result": True, "arguments": {
        "data": {"from_parameter": "data"}, "kernel": [[1] * 5] * 5, "factor": 1 / 25, "border": 0}}}}
    return {"process_graph": {
        "load": load,
        "n": {"process_id": "apply_neighborhood", "arguments": {
            "data": {"from_node": "load"}, "process": kernel, "size": px, "overlap": overlap}},
        "save": {"process_id": "save_result", "result": True,
                 "arguments": {"data": {"from_node": "n"}, "format": "GTiff"}}}}


def utm_box(west, south, east, north):
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return transform_geom("EPSG:32632", "EPSG:4326", {"type": "Polygon", "coordinates": [ring]})


# Tile borders are every 240 m from (679720, 5151920): the first box crosses 3 × 2 tiles, the second
# lies inside one, the point is in one pixel, the last box lies outside the grid.
GEOMETRIES = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "id": "crossing", "properties": {"name": "crossing"},
     "geometry": utm_box(679850, 5151430, 680400, 5151850)},
    {"type": "Feature", "id": "inside", "properties": {"name": "inside"},
     "geometry": utm_box(680500, 5151100, 680640, 5151200)},
    {"type": "Feature", "id": "point", "properties": {},
     "geometry": transform_geom("EPSG:32632", "EPSG:4326", {"type": "Point", "coordinates": [679965, 5151675]})},
    {"type": "Feature", "id": "outside", "properties": {}, "geometry": utm_box(700000, 5100000, 700100, 5100100)},
]}


def aggregated(reducer_graph, fmt="JSON"):
    return {"process_graph": {
        "load": load_node(),
        "agg": {"process_id": "aggregate_spatial", "arguments": {
            "data": {"from_node": "load"}, "geometries": GEOMETRIES, "reducer": {"process_graph": reducer_graph}}},
        "save": {"process_id": "save_result", "result": True, "arguments": {"data": {"from_node": "agg"},
                                                                            "format": fmt}}}}


def statistics_reducer():
    nodes = {name: call(name) for name in ("mean", "sd", "min", "max", "count", "sum", "variance", "first", "last")}
    nodes["all"] = {"process_id": "array_create", "result": True,
                    "arguments": {"data": [{"from_node": name} for name in nodes]}}
    return nodes


class Runs:
    """Single-task and fanned-out runs of one job on the directory S3."""

    def __init__(self, s3, sqs) -> None:
        self.s3 = s3
        self.sqs = sqs
        self.job_id = f"j-{uuid.uuid4().hex[:8]}"

    def config(self, run_id):
        return RunConfig.for_run(self.job_id, run_id)

    def publisher(self):
        return EventPublisher(self.sqs, STATUS_QUEUE, LOG_QUEUE)

    def rasters(self):
        return RasterReader(resolve_href=self.s3.resolve_href)

    def store_process(self, config, process):
        self.s3.put_object(Bucket=RESULTS_BUCKET, Key=config.graph_key, Body=json.dumps(process).encode())

    def single(self, process) -> ResultsManifest:
        config = self.config("single")
        self.store_process(config, process)
        assert run_job(config, SETTINGS, s3=self.s3, publisher=self.publisher(), rasters=self.rasters()) == EXIT_OK
        return self.manifest(config)

    def plan(self, config, process, halo=0) -> TileManifest:
        """The planner's tiles over the run's output grid (the grid of its loads, as narrowed by the graph)."""
        env = EvalEnv(catalog=StacCatalog(S3JsonStore(self.s3, DEMO_BUCKET)), rasters=self.rasters())
        _, grid = plan_loads(process, env)
        manifest = TileManifest(grid.width, grid.height, EDGE, halo,
                                tuple(tile_windows(grid.width, grid.height, EDGE, halo)))
        assert len(manifest.tiles) >= 16
        self.s3.put_object(Bucket=RESULTS_BUCKET, Key=catalog_layout.plan_key(config.results_prefix),
                           Body=json.dumps(manifest.to_json()).encode())
        return manifest

    def tiles(self, config, process, manifest, *, only=None, registries=None) -> dict[str, int]:
        self.store_process(config, process)
        codes = {}
        for tile in manifest.tiles:
            if only is not None and tile.tile_id not in only:
                continue
            registry = (registries or {}).get(tile.tile_id, DEFAULT_REGISTRY)
            codes[tile.tile_id] = run_tile(config, tile.tile_id, SETTINGS, s3=self.s3, publisher=self.publisher(),
                                           rasters=self.rasters(), registry=registry)
        return codes

    def combine(self, config, previous=None) -> int:
        return run_combine(config, SETTINGS, s3=self.s3, publisher=self.publisher(), rasters=self.rasters(),
                           previous_results_prefix=previous)

    def fanned_out(self, process, halo=0, run_id="fanned") -> ResultsManifest:
        config = self.config(run_id)
        manifest = self.plan(config, process, halo)
        assert set(self.tiles(config, process, manifest).values()) == {EXIT_OK}
        assert self.combine(config) == EXIT_OK
        return self.manifest(config)

    def manifest(self, config) -> ResultsManifest:
        document = json.loads(self.s3.path(RESULTS_BUCKET, catalog_layout.manifest_key(config.results_prefix))
                              .read_text())
        return ResultsManifest.from_json(document)

    def download(self, run_id: str, target: Path) -> Path:
        """The results as the openEO client's `download_files` saves them: the results API's
        collection-level assets, each file named after its asset, in one folder."""
        job = Job(job_id=self.job_id, user_id="u-1", process={}, status=JobStatus.FINISHED, run_id=run_id,
                  finished=datetime.now(UTC))
        collection = job_results(job, PresigningStore(self.s3), "https://api/openeo/1.2", 3600)
        target.mkdir(parents=True, exist_ok=True)
        for name, asset in collection["assets"].items():
            shutil.copyfile(asset["href"], target / name)
        return target

    def read_json(self, asset):
        return json.loads(self.s3.path(RESULTS_BUCKET, asset["key"]).read_text())


class PresigningStore:
    """The results API's store on the directory S3: a presigned URL is the file's path."""

    def __init__(self, s3) -> None:
        self.s3 = s3

    def read_manifest(self, key):
        path = self.s3.path(RESULTS_BUCKET, key)
        return ResultsManifest.from_json(json.loads(path.read_text())) if path.exists() else None

    def presign(self, key, expires_in_s):
        return str(self.s3.path(RESULTS_BUCKET, key))


@pytest.fixture
def runs(demo_s3):
    return Runs(demo_s3, RecordingSQS())


def read_raster(path):
    with rasterio.open(path) as dataset:
        return dataset.read(), dataset.transform, dataset.crs, dataset.nodata, dataset.descriptions


def assert_mosaic_equals_single(runs, tmp_path, single, run_id, name="result"):
    single_file = runs.s3.path(RESULTS_BUCKET, single.assets[f"{name}.tif"]["key"])
    mosaic = runs.download(run_id, tmp_path / "download") / f"{name}.vrt"
    expected, got = read_raster(single_file), read_raster(mosaic)
    np.testing.assert_array_equal(got[0], expected[0])  # pixel for pixel, NaN where NaN
    assert got[1:3] == expected[1:3] and got[4] == expected[4]  # transform, CRS, band names
    assert str(got[3]) == str(expected[3])  # no-data (NaN is not equal to itself)


def test_a_pixel_local_graph_gives_the_single_tasks_pixels_over_16_tiles(runs, tmp_path):
    single = runs.single(ndvi_mean())
    single_statuses = len(runs.sqs.messages[STATUS_QUEUE])
    fanned = runs.fanned_out(ndvi_mean())

    assert_mosaic_equals_single(runs, tmp_path, single, "fanned")
    # one asset per tile with its own footprint, plus the mosaic
    tiles = [name for name in fanned.assets if name.startswith("result_r")]
    assert len(tiles) == 16 and set(fanned.assets) == {*tiles, "result.vrt"}
    assert fanned.assets["result.vrt"]["type"] == "application/xml"
    corner, whole = fanned.assets["result_r0000c0000.tif"], single.assets["result.tif"]
    assert corner["proj:shape"] == [EDGE, EDGE] and corner["bbox"] != whole["bbox"]
    assert corner["title"] == "Result, tile r0000c0000"
    assert fanned.assets["result.vrt"]["proj:shape"] == whole["proj:shape"]
    assert fanned.assets["result.vrt"]["proj:transform"] == whole["proj:transform"]
    np.testing.assert_allclose(fanned.assets["result.vrt"]["bbox"], whole["bbox"], rtol=1e-9)
    np.testing.assert_allclose(fanned.bbox, single.bbox, rtol=1e-9)
    stats = fanned.assets["result.vrt"]["raster:bands"][0]["statistics"]
    expected = whole["raster:bands"][0]["statistics"]
    assert stats["minimum"] == expected["minimum"] and stats["maximum"] == expected["maximum"]
    assert stats["mean"] == pytest.approx(expected["mean"], rel=1e-6)

    # tile steps log with their tile id and send only `running`: at their start, and with the share of the run's
    # tiles done after their record; combine sends 100 and the usage summed
    logs = runs.sqs.messages[LOG_QUEUE]
    tile_logs = [entry for entry in logs if entry["message"].startswith("tile r0001c0002: ")]
    assert tile_logs and any("window [48, 24, 24, 24]" in entry["message"] for entry in tile_logs)
    statuses = runs.sqs.messages[STATUS_QUEUE][single_statuses:]
    assert len(statuses) == 16 * 2 + 1 and {s["status"] for s in statuses} == {"running"}
    progress = [s["progress"] for s in statuses if s.get("progress") is not None]
    assert progress == [100 * done // 16 for done in range(1, 16)] + [99, 100]  # 16 tiles in turn, the combine
    assert statuses[-1]["progress"] == 100
    cpu = statuses[-1]["usage"]["cpu"]["value"]
    record = TileRecord.from_json(json.loads(runs.s3.path(
        RESULTS_BUCKET, catalog_layout.tile_record_key(runs.config("fanned").results_prefix, "r0000c0000"))
        .read_text()))
    assert record.finished and 0 < record.usage["cpu"]["value"] < cpu


def test_a_graph_with_a_kernel_reads_a_halo_and_gives_the_single_tasks_pixels(runs, tmp_path):
    single = runs.single(smoothed_per_date())
    fanned = runs.fanned_out(smoothed_per_date(), halo=1)

    names = [name for name in single.assets if name.endswith(".tif")]
    assert len(names) > 1  # one file per date, each its own mosaic
    assert {name for name in fanned.assets if name.endswith(".vrt")} == {n.replace(".tif", ".vrt") for n in names}
    for name in names:
        stem = name.removesuffix(".tif")
        assert_mosaic_equals_single(runs, tmp_path / stem, single, "fanned", stem)

    # and the proof that this can fail: without its halo, a tile's kernel takes its edge for the grid's
    config = runs.config("no-halo")
    manifest = runs.plan(config, smoothed_per_date(), halo=0)
    assert runs.tiles(config, smoothed_per_date(), manifest, only={"r0001c0001"}) == {"r0001c0001": EXIT_OK}
    with rasterio.open(runs.s3.path(RESULTS_BUCKET, f"{config.results_prefix}tiles/r0001c0001/{names[0]}")) as tile:
        cut = tile.read(1)
    with rasterio.open(runs.s3.path(RESULTS_BUCKET, single.assets[names[0]]["key"])) as whole:
        window = whole.read(1)[EDGE:2 * EDGE, EDGE:2 * EDGE]
    np.testing.assert_array_equal(cut[1:-1, 1:-1], window[1:-1, 1:-1])
    assert not np.array_equal(cut[0], window[0])


def test_apply_neighborhood_uses_the_whole_grids_windows_in_every_tile(runs, tmp_path):
    single = runs.single(neighbourhoods())
    runs.fanned_out(neighbourhoods(), halo=1)

    (name,) = single.assets
    assert_mosaic_equals_single(runs, tmp_path, single, "fanned", name.removesuffix(".tif"))


def test_aggregate_spatial_combines_to_the_single_tasks_numbers(runs):
    single = runs.single(aggregated(statistics_reducer()))
    # a halo is read (as for a kernel before the aggregation), but only the tile's own pixels count
    fanned = runs.fanned_out(aggregated(statistics_reducer()), halo=2)

    assert set(fanned.assets) == set(single.assets) == {"result.json"}
    # the combine step evaluates the aggregation without progress reports of its own: the job's progress is the
    # tiles' (done in turn here), then the combine's 100
    assert [s["progress"] for s in runs.sqs.messages[STATUS_QUEUE]
            if s["run_id"] == "fanned" and s.get("progress") is not None] == [
        min(99, 100 * done // 16) for done in range(1, 17)] + [100]
    expected, got = runs.read_json(single.assets["result.json"]), runs.read_json(fanned.assets["result.json"])
    assert got.keys() == expected.keys()
    want = np.array([expected[date] for date in expected], dtype=float)  # date, geometry, band × statistic
    have = np.array([got[date] for date in got], dtype=float)
    np.testing.assert_array_equal(np.isnan(have), np.isnan(want))
    # counts, min, max, first and last exactly; sums, means, variance and sd up to the order of the additions
    np.testing.assert_allclose(have, want, rtol=1e-12, atol=0)
    statistics = 9
    exact = [i for i in range(want.shape[-1]) if i % statistics in (2, 3, 4, 7, 8)]  # min, max, count, first, last
    np.testing.assert_array_equal(have[..., exact], want[..., exact])
    # the crossing box has pixels of several tiles, the outside box none
    assert np.isfinite(want[:, 0]).all() and np.isnan(want[:, 3]).all()


def test_aggregate_spatial_outputs_are_written_by_the_single_tasks_writers(runs):
    process = aggregated({"m": {**call("mean"), "result": True}}, "GeoJSON")
    process["process_graph"]["save_csv"] = {"process_id": "save_result", "arguments": {
        "data": {"from_node": "agg"}, "format": "CSV"}}
    single = runs.single(process)
    fanned = runs.fanned_out(process)

    assert set(single.assets) == set(fanned.assets) == {"result.geojson", "result.csv"}
    for name in single.assets:
        assert fanned.assets[name]["type"] == single.assets[name]["type"]
    csv = [runs.s3.path(RESULTS_BUCKET, m.assets["result.csv"]["key"]).read_text().splitlines()
           for m in (fanned, single)]
    assert csv[0][0] == csv[1][0] and len(csv[0]) == len(csv[1])
    features = zip(runs.read_json(fanned.assets["result.geojson"])["features"],
                   runs.read_json(single.assets["result.geojson"])["features"], strict=True)
    for have, want in features:
        assert have["id"] == want["id"] and have["geometry"] == want["geometry"]
        assert have["properties"].keys() == want["properties"].keys()
        for key, value in want["properties"].items():
            numeric = isinstance(value, float)
            assert have["properties"][key] == (pytest.approx(value, rel=1e-12) if numeric else value)


def failing_registry():
    registry = ProcessRegistry()
    for process_id in DEFAULT_REGISTRY:
        if process_id != "ndvi":
            registry.add(process_id, DEFAULT_REGISTRY.get(process_id))

    def no_data(args, env):
        raise NoDataAvailableException()
    registry.add("ndvi", no_data)
    return registry


def test_failed_and_lost_tiles_give_partial_results_naming_them_and_a_restart_redoes_only_them(runs, tmp_path):
    first = runs.config("first")
    manifest = runs.plan(first, ndvi_mean())
    ran = {t.tile_id for t in manifest.tiles} - {"r0000c0000"}  # its task never finished
    codes = runs.tiles(first, ndvi_mean(), manifest, only=ran, registries={"r0002c0001": failing_registry()})
    assert codes["r0002c0001"] == EXIT_FAILED and sum(c == EXIT_OK for c in codes.values()) == 14

    assert runs.combine(first) == EXIT_FAILED
    partial = json.loads(runs.s3.path(RESULTS_BUCKET, catalog_layout.partial_manifest_key(first.results_prefix))
                         .read_text())
    assert [m["tile_id"] for m in partial["missing"]] == ["r0000c0000", "r0002c0001"]
    assert partial["missing"][0]["reason"] == "the tile's task did not finish"
    assert partial["missing"][1]["reason"].startswith("There is no data available for the given extents.")
    assert len(partial["assets"]) == 14 and "result.vrt" not in partial["assets"]
    assert not runs.s3.path(RESULTS_BUCKET, first.manifest_key).exists()
    error = runs.sqs.messages[STATUS_QUEUE][-1]
    assert error["status"] == "error"
    # the usage of every task of the run, the failed tile's too
    records = [TileRecord.from_json(json.loads(path.read_text())) for path in
               runs.s3.path(RESULTS_BUCKET, f"{first.results_prefix}tiles").glob("*/record.json")]
    assert len(records) == 15 and records[0].usage["duration"]["value"] > 0
    assert error["usage"]["duration"]["value"] > sum(r.usage["duration"]["value"] for r in records) - 0.01
    assert error["reason"].startswith("2 of 16 tiles failed: r0000c0000 (the tile's task did not finish), "
                                      "r0002c0001 (There is no data")
    tile_errors = [e for e in runs.sqs.messages[LOG_QUEUE] if e["level"] == "error"
                   and e["message"].startswith("tile r0002c0001: ")]
    assert len(tile_errors) == 1

    # a restart: a new run of the same plan processes the two missing tiles only
    second = runs.config("second")
    runs.plan(second, ndvi_mean())
    redo = {"r0000c0000", "r0002c0001"}
    assert runs.tiles(second, ndvi_mean(), manifest, only=redo) == dict.fromkeys(redo, EXIT_OK)
    assert runs.combine(second, previous=first.results_prefix) == EXIT_OK
    restarted = runs.manifest(second)
    single = runs.single(ndvi_mean())
    assert_mosaic_equals_single(runs, tmp_path, single, "second")
    assert restarted.assets["result_r0000c0001.tif"]["key"].startswith(first.results_prefix)
    assert restarted.assets["result_r0002c0001.tif"]["key"].startswith(second.results_prefix)
    assert "Combining 16 of 16 tiles (14 from the previous run)" in {e["message"] for e in runs.sqs.messages[LOG_QUEUE]}


@pytest.mark.parametrize(("step", "message"), [("tiles", "STRATUS_RUN_STEP is one of"),
                                               ("tile", "STRATUS_TILE_ID")])
def test_the_entrypoint_refuses_an_unknown_step_or_a_tile_without_its_id(monkeypatch, caplog, step, message):
    for name, value in {**RunConfig.for_run("j-1", "r-1").to_env(), ENV["status_queue_url"]: STATUS_QUEUE,
                        ENV["log_queue_url"]: LOG_QUEUE, RUN_STEP_ENV: step}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(TILE_ID_ENV, raising=False)
    with caplog.at_level(logging.ERROR, logger="stratus_processing"):
        assert entrypoint.main() == EXIT_MISCONFIGURED
    assert message in caplog.text


def test_the_combine_step_evaluates_only_what_follows_aggregate_spatial():
    process = aggregated({"m": {**call("mean"), "result": True}})
    graph = process["process_graph"]
    graph["ndvi"] = {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}}}
    graph["save_tif"] = {"process_id": "save_result", "arguments": {"data": {"from_node": "ndvi"}, "format": "GTiff"}}

    pruned = combine_graph(process)["process_graph"]

    assert set(pruned) == {"agg", "save"}  # no load, no raster output: the tiles wrote those
    assert pruned["agg"]["arguments"]["data"] is None
    assert pruned["agg"]["arguments"]["geometries"] == GEOMETRIES
    assert pruned["save"]["result"] is True and not pruned["agg"].get("result")
    assert combine_graph(ndvi_mean()) is None
    # an aggregate that is the graph's result without save_result: it is the combined graph's result
    del graph["save"], graph["save_tif"], graph["ndvi"]
    graph["agg"]["result"] = True
    assert combine_graph(process)["process_graph"]["agg"]["result"] is True


def test_a_tile_of_a_plan_for_another_grid_fails_with_an_error_record(runs):
    config = runs.config("wrong-grid")
    manifest = TileManifest(120, 84, EDGE, 0, tuple(tile_windows(120, 84, EDGE)))
    runs.s3.put_object(Bucket=RESULTS_BUCKET, Key=catalog_layout.plan_key(config.results_prefix),
                       Body=json.dumps(manifest.to_json()).encode())
    assert runs.tiles(config, ndvi_mean(), manifest, only={"r0000c0000"}) == {"r0000c0000": EXIT_FAILED}

    record = TileRecord.from_json(json.loads(runs.s3.path(
        RESULTS_BUCKET, catalog_layout.tile_record_key(config.results_prefix, "r0000c0000")).read_text()))
    assert record.status == "error" and record.error["code"] == "Internal"
    assert "120 × 84 px, the loads give 96 × 84 px" in record.error["message"]
    assert not record.assets and record.usage["duration"]["value"] > 0


class DirectoryDocuments:
    """PlanRun's `RunDocuments` on the directory S3 (no earlier runs: nothing to restart from)."""

    def __init__(self, s3) -> None:
        self.s3 = s3

    def read_document(self, key):
        path = self.s3.path(RESULTS_BUCKET, key)
        return json.loads(path.read_text()) if path.exists() else None

    def write_document(self, key, document):
        self.s3.put_object(Bucket=RESULTS_BUCKET, Key=key, Body=json.dumps(document).encode())

    def modified_at(self, key):
        return None

    def run_ids(self, job_id):
        return []

    def keys_under(self, prefix):
        return []


class NoDryRun:
    """The API's dry-run catalog, which PlanRun with the engine does not need."""

    def collection(self, collection_id):
        raise AssertionError("the dry run was asked")

    items = collection


def in_degrees(process):
    """The graph with its load's extent in WGS84 degrees (the grid is then known exactly only to the engine)."""
    west, south, east, north = (BOLZANO_EXTENT[k] for k in ("west", "south", "east", "north"))
    box = utm_box(west, south, east, north)["coordinates"][0]
    lons, lats = [p[0] for p in box], [p[1] for p in box]
    process["process_graph"]["load"]["arguments"]["spatial_extent"] = {
        "west": min(lons), "south": min(lats), "east": max(lons), "north": max(lats)}
    return process


@pytest.mark.parametrize("process", [in_degrees(ndvi_mean()), aggregated({"m": {**call("mean"), "result": True}})],
                         ids=["extent in degrees", "aggregate_spatial over WGS84 geometries"])
def test_planrun_with_the_engine_fans_out_grids_in_degrees_on_the_grid_the_tiles_compute_on(runs, process):
    # Given a run whose grid only the engine sizes (reprojection), and tasks that hold 24 px tiles only
    config = runs.config("planned")
    runs.store_process(config, process)
    engine = EngineLoadPlanner(StacCatalog(S3JsonStore(runs.s3, DEMO_BUCKET)), runs.rasters())
    planner = RunPlanner(DirectoryDocuments(runs.s3), NoDryRun(), RESULTS_BUCKET,
                         TaskBudget(max_load_bytes=EDGE * EDGE * 8 * 12), TileBounds(EDGE, EDGE, EDGE), loads=engine)
    # When PlanRun plans it
    planned = planner.plan(runs.job_id, "planned", config.graph_key, config.results_prefix)
    # Then it fans out over the engine's own grid, which a tile step accepts (it refuses a plan of another size)
    assert planned.shape is RunShape.FAN_OUT and planned.tiles >= 12, planned
    manifest = TileManifest.from_json(runs.read_json({"key": catalog_layout.plan_key(config.results_prefix)}))
    context, grid = plan_loads(process, EvalEnv(catalog=StacCatalog(S3JsonStore(runs.s3, DEMO_BUCKET)),
                                                rasters=runs.rasters()))
    assert (manifest.grid_width, manifest.grid_height) == (grid.width, grid.height)
    # and the engine's load plans are frozen beside the plan, exactly
    frozen = loads_from_json(runs.read_json({"key": catalog_layout.load_plans_key(config.results_prefix)}))
    assert frozen == context.loads
    # which a tile step takes instead of searching the catalog again (here it has none to search)
    south_east = manifest.tiles[-1].tile_id
    no_catalog = replace(SETTINGS, data_bucket="no-such-bucket")
    assert run_tile(config, south_east, no_catalog, s3=runs.s3, publisher=runs.publisher(),
                    rasters=runs.rasters()) == EXIT_OK


def test_a_restarts_progress_counts_the_tiles_it_reuses(runs):
    # Given a restart that runs 2 of the plan's 16 tiles (the rest reused from the errored run), one done
    config = runs.config("restart")
    manifest = TileManifest(96, 84, EDGE, 0, tuple(tile_windows(96, 84, EDGE)))
    to_run = [tile.to_json() for tile in manifest.tiles[:2]]
    runs.s3.put_object(Bucket=RESULTS_BUCKET, Key=catalog_layout.tile_items_key(config.results_prefix),
                       Body=json.dumps(to_run).encode())
    runs.s3.put_object(Bucket=RESULTS_BUCKET, Key=catalog_layout.tile_record_key(config.results_prefix, "r0000c0000"),
                       Body=b"{}")
    # Then the run is 15 of 16 tiles done; and with both done, 99: the combine step reports 100
    assert run_progress(runs.s3, RESULTS_BUCKET, config.results_prefix, manifest) == 100 * 15 // 16
    runs.s3.put_object(Bucket=RESULTS_BUCKET, Key=catalog_layout.tile_record_key(config.results_prefix, "r0000c0001"),
                       Body=b"{}")
    assert run_progress(runs.s3, RESULTS_BUCKET, config.results_prefix, manifest) == 99
