"""PlanRun (`stratus.domain.run_planning`): the shape of a run from its snapshot's dry run, the plan and the
map's items in the run's folder, a restart that reuses the finished tiles of the last errored fan-out run, and
what a failed fan-out run keeps (no AWS: the bucket is a dict)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from stratus import catalog_layout
from stratus.domain.fanout_plan import TaskBudget, TaskSize, TileBounds, TileManifest
from stratus.domain.run_planning import RunPlanner, kept_after_error, superseded_runs

from tests.unit.test_estimate import COLLECTION, item

JOB = "j-1"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
# 96 x 84 px, 3 dates x 2 bands = 48 B/px: 387 KB of loaded values
EXTENT = {"west": 679720, "east": 680680, "south": 5151080, "north": 5151920, "crs": 32632}
ITEMS = [item(2), item(7), item(12)]
SMALL_TILES = TileBounds(min_px=32, max_px=32, block_px=32)  # 3 x 3 tiles of at most 32 px
TINY_BUDGET = TaskBudget(TaskSize(2.0, 8192), max_load_bytes=100_000)


def graph(reducer="mean"):
    return {"load": {"process_id": "load_collection", "arguments": {
        "id": "c", "spatial_extent": EXTENT, "temporal_extent": ["2022-06-01", "2022-07-01"], "bands": ["B04", "B08"]}},
        "reduce": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "load"}, "dimension": "t", "reducer": {"process_graph": {
                "r": {"process_id": reducer, "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "reduce"}, "format": "GTiff"},
                 "result": True}}


class Bucket:
    """`RunDocuments` over a dict; each write is a second after the last."""

    def __init__(self):
        self.objects: dict[str, object] = {}
        self.written: dict[str, datetime] = {}

    def read_document(self, key):
        return self.objects.get(key)

    def write_document(self, key, document):
        self.objects[key] = document
        self.written[key] = T0 + timedelta(seconds=len(self.written))

    def modified_at(self, key):
        return self.written.get(key)

    def run_ids(self, job_id):
        root = catalog_layout.runs_prefix(job_id)
        return sorted({k[len(root):].split("/")[0] for k in self.objects if k.startswith(root)})

    def keys_under(self, prefix):
        return [k for k in self.objects if k.startswith(prefix)]


class Catalog:
    def collection(self, collection_id):
        return COLLECTION if collection_id == "c" else None

    def items(self, collection_id, search):
        return ITEMS


def planner(bucket, budget=TINY_BUDGET):
    return RunPlanner(bucket, Catalog(), "results-bucket", budget, SMALL_TILES)


def prepare(bucket, run_id, process_graph=None):
    bucket.write_document(catalog_layout.graph_key(JOB, run_id), {"process_graph": process_graph or graph()})
    return catalog_layout.graph_key(JOB, run_id), catalog_layout.results_prefix(JOB, run_id)


def plan(bucket, run_id, process_graph=None, budget=TINY_BUDGET):
    return planner(bucket, budget).plan(JOB, run_id, *prepare(bucket, run_id, process_graph))


def test_a_run_within_the_budget_is_one_task_and_writes_no_plan():
    bucket = Bucket()
    planned = plan(bucket, "r1", budget=TaskBudget())
    assert planned.to_output() == {"shape": "one_task", "vcpu": "2", "memory": "8192", "custom_size": False,
                                   "tiles": 0, "tiles_to_run": 0, "bucket": "", "tiles_key": "",
                                   "previous_results_prefix": "", "reasons": []}
    assert not bucket.keys_under(catalog_layout.plan_key(catalog_layout.results_prefix(JOB, "r1")))


def test_a_run_over_the_budget_fans_out_and_writes_the_plan_and_the_map_items():
    bucket = Bucket()
    planned = plan(bucket, "r1").to_output()
    prefix = catalog_layout.results_prefix(JOB, "r1")
    assert planned["shape"] == "fan_out" and planned["tiles"] == planned["tiles_to_run"] == 9
    assert (planned["bucket"], planned["tiles_key"]) == ("results-bucket", catalog_layout.tile_items_key(prefix))
    manifest = TileManifest.from_json(bucket.objects[catalog_layout.plan_key(prefix)])
    assert (manifest.grid_width, manifest.grid_height, manifest.tile_px) == (96, 84, 32)
    assert bucket.objects[planned["tiles_key"]] == manifest.map_items()
    assert planned["previous_results_prefix"] == "" and not planned["custom_size"]


def test_an_unsplittable_graph_runs_as_one_task_with_the_reason_never_smaller_than_the_default():
    spatial = graph()
    spatial["reduce"]["arguments"]["dimension"] = "x"
    planned = plan(Bucket(), "r2", spatial).to_output()
    assert planned["shape"] == "one_big_task" and "reduce_dimension 'reduce'" in planned["reasons"][0]
    # 387 KB fit a smaller task than the default: the default it is
    assert (planned["vcpu"], planned["memory"], planned["custom_size"]) == ("2", "8192", False)


def test_a_graph_the_dry_run_cannot_size_runs_as_one_task():
    class Broken(Catalog):
        def items(self, collection_id, search):
            raise RuntimeError("catalog down")

    bucket = Bucket()
    planned = RunPlanner(bucket, Broken(), "b", TINY_BUDGET, SMALL_TILES).plan(JOB, "r1", *prepare(bucket, "r1"))
    assert planned.to_output()["shape"] == "one_task"


def fail(bucket, run_id, failed):
    """What the tile tasks and the combine step of an errored fan-out run leave behind."""
    prefix = catalog_layout.results_prefix(JOB, run_id)
    for tile in bucket.objects[catalog_layout.tile_items_key(prefix)]:
        tile_id = tile["tile_id"]
        status = "error" if tile_id in failed else "finished"
        bucket.write_document(catalog_layout.tile_record_key(prefix, tile_id), {"tile_id": tile_id, "status": status})
    bucket.write_document(catalog_layout.partial_manifest_key(prefix), {"assets": {}, "missing": [
        {"tile_id": t, "reason": "bad data"} for t in failed]})


def test_a_restart_runs_only_the_tiles_the_last_errored_run_did_not_finish():
    bucket = Bucket()
    plan(bucket, "r1")
    fail(bucket, "r1", {"r0000c0001", "r0002c0002"})
    planned = plan(bucket, "r2").to_output()
    assert planned["tiles"] == 9 and planned["tiles_to_run"] == 2
    items = bucket.objects[planned["tiles_key"]]
    assert [t["tile_id"] for t in items] == ["r0000c0001", "r0002c0002"]
    assert planned["previous_results_prefix"] == catalog_layout.results_prefix(JOB, "r1")


def test_a_restart_with_another_graph_or_after_a_finished_run_runs_every_tile():
    bucket = Bucket()
    plan(bucket, "r1")
    fail(bucket, "r1", {"r0000c0001"})
    changed = graph()
    changed["load"]["arguments"]["temporal_extent"] = ["2022-06-01", "2022-06-30"]
    planned = plan(bucket, "r2", changed).to_output()
    assert planned["tiles_to_run"] == 9 and planned["previous_results_prefix"] == ""
    # the run before the last one errored with a partial result; r3 reuses the newest errored run (r2)
    fail(bucket, "r2", set())
    planned = plan(bucket, "r3", changed).to_output()
    assert planned["tiles_to_run"] == 0 and planned["previous_results_prefix"] == catalog_layout.results_prefix(
        JOB, "r2")


def test_a_failed_fan_out_run_keeps_its_tiles_until_a_later_run_finishes_without_them():
    keep = kept_after_error(JOB, "r1")
    prefix = catalog_layout.results_prefix(JOB, "r1")
    assert keep(catalog_layout.tile_record_key(prefix, "r0000c0000"))
    assert keep(f"{catalog_layout.tile_prefix(prefix, 'r0000c0000')}result.tif")
    assert keep(catalog_layout.plan_key(prefix)) and keep(catalog_layout.partial_manifest_key(prefix))
    assert keep(catalog_layout.graph_key(JOB, "r1"))
    assert not keep(catalog_layout.tile_items_key(prefix)) and not keep(f"{prefix}mosaic.vrt")
    bucket = Bucket()
    plan(bucket, "r1")
    fail(bucket, "r1", {"r0000c0001"})
    plan(bucket, "r2")
    fail(bucket, "r2", {"r0000c0001"})
    plan(bucket, "r3")
    # r3's results point to tiles of r2 (reused): r1 is superseded, r2 stays
    reused = f"{catalog_layout.tile_prefix(catalog_layout.results_prefix(JOB, 'r2'), 'r0000c0000')}result.tif"
    assert superseded_runs(bucket, JOB, "r3", [reused]) == ["r1"]
    assert superseded_runs(bucket, JOB, "r3", []) == ["r1", "r2"]


UTM = {"type": "name", "properties": {"name": "EPSG:32632"}}


def zonal(geometries, extent=EXTENT):
    process_graph = graph()
    process_graph["load"]["arguments"]["spatial_extent"] = extent
    process_graph["reduce"] = {"process_id": "aggregate_spatial", "arguments": {
        "data": {"from_node": "load"}, "geometries": geometries, "reducer": {"process_graph": {
            "m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}}
    process_graph["save"]["arguments"]["format"] = "JSON"
    return process_graph


def polygon(west, south, east, north, crs=None):
    document = {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north],
                                                     [west, south]]]}
    return {**document, "crs": crs} if crs else document


def test_only_a_grid_the_dry_run_sizes_as_the_engine_does_is_cut_into_tiles():
    # an extent in the collection's projected CRS, narrowed by nothing or by geometries covering it: tiles
    covering = polygon(679000, 5150000, 681000, 5152000, crs=UTM)
    assert plan(Bucket(), "r1", zonal(covering)).to_output()["shape"] == "fan_out"
    # the engine's grid is another when the geometries narrow the load in another CRS, or do not cover it,
    # or the extent is in degrees: one task (never tiles that miss a row of the engine's grid)
    for process_graph in (zonal(polygon(11.33, 46.48, 11.36, 46.51)),
                          zonal(polygon(679800, 5151200, 680600, 5151900, crs=UTM)),
                          zonal(covering, extent={"west": 11.3, "south": 46.4, "east": 11.4, "north": 46.5})):
        planned = plan(Bucket(), "r2", process_graph).to_output()
        assert planned["shape"] == "one_big_task", process_graph
        assert any("output grid is known exactly only to the engine" in reason for reason in planned["reasons"])


class EngineReadsWhole:
    """The engine's `LoadPlanner` answer for a graph whose loads it reads whole (e.g. on different grids)."""

    def estimate(self, snapshot):
        return "the loaded cubes lie on different grids"


class EngineFindsNoData:
    def estimate(self, snapshot):
        from stratus.errors import OpenEOApiException
        raise OpenEOApiException(message="There is no data available for the given extents.")


def test_a_graph_the_engine_reads_whole_runs_as_one_big_task_with_the_engines_reason():
    # Given a run over budget whose projected extent the dry run alone would fan out, but whose loads the engine
    # reads whole (no tile step could run)
    bucket = Bucket()
    planned = RunPlanner(bucket, Catalog(), "results-bucket", TINY_BUDGET, SMALL_TILES,
                         loads=EngineReadsWhole()).plan(JOB, "r-1", *prepare(bucket, "r-1"))
    # Then it runs as one task sized for it, says why, and writes no plan
    assert planned.shape.value == "one_big_task" and planned.tiles == 0
    assert planned.reasons == ("load_collection 'load': the engine reads the loads whole: the loaded cubes lie "
                               "on different grids",)
    assert catalog_layout.plan_key(catalog_layout.results_prefix(JOB, "r-1")) not in bucket.objects


def test_a_graph_whose_loads_find_no_data_runs_as_one_task_that_reports_it():
    bucket = Bucket()
    planned = RunPlanner(bucket, Catalog(), "results-bucket", TINY_BUDGET, SMALL_TILES,
                         loads=EngineFindsNoData()).plan(JOB, "r-1", *prepare(bucket, "r-1"))
    assert planned.shape.value == "one_task" and not planned.custom_size and planned.tiles == 0
