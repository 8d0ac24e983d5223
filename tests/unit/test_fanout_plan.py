"""The planner of "Large areas": one task, a fan-out over grid-aligned tiles, or one big task."""

import json

import pytest

from stratus.domain.estimate import GraphEstimate, LoadEstimate, estimate_graph
from stratus.domain.fanout_plan import (
    BLOCK_PX,
    FARGATE_SIZES,
    LARGEST_TASK,
    MAX_TILE_PX,
    MIN_TILE_PX,
    Halo,
    RunShape,
    TaskBudget,
    TaskSize,
    Tile,
    TileManifest,
    Window,
    analyse_split,
    plan_run,
    task_size_for,
    tile_windows,
)
from stratus.run_contract import RunContractError

GIB = 1024 ** 3


def estimate(width, height, dates=12, bands=2):
    return GraphEstimate((LoadEstimate("load", "c", width, height, dates, bands),))


def graph(*steps):
    """load -> steps... -> save_result (GTiff); each step is (process_id, extra arguments)."""
    nodes = {"load": {"process_id": "load_collection", "arguments": {"id": "c"}}}
    previous = "load"
    for index, (process_id, arguments) in enumerate(steps):
        node_id = f"n{index}"
        nodes[node_id] = {"process_id": process_id, "arguments": {"data": {"from_node": previous}, **arguments}}
        previous = node_id
    nodes["save"] = {"process_id": "save_result", "arguments": {"data": {"from_node": previous}, "format": "GTiff"},
                     "result": True}
    return nodes


def reducer(*process_ids):
    nodes = {f"p{i}": {"process_id": p, "arguments": {"data": {"from_parameter": "data"}}}
             for i, p in enumerate(process_ids)}
    nodes[f"p{len(process_ids) - 1}"]["result"] = True
    return {"process_graph": nodes}


NDVI_MEDIAN = graph(("ndvi", {}), ("reduce_dimension", {"dimension": "t", "reducer": reducer("median")}))


# --- one task or fan-out --------------------------------------------------------------------------

def test_a_job_within_the_budget_stays_one_task_of_the_default_size():
    plan = plan_run(NDVI_MEDIAN, estimate(3000, 3000))  # 3000² × 24 × 8 B = 1.6 GiB, budget 1.75 GiB
    assert plan.shape is RunShape.ONE_TASK and plan.task_size == TaskBudget().size and plan.manifest is None


def test_a_large_tile_local_job_fans_out_over_aligned_tiles_covering_the_grid_once():
    plan = plan_run(NDVI_MEDIAN, estimate(20_000, 12_345))
    assert plan.shape is RunShape.FAN_OUT
    manifest = plan.manifest
    assert manifest.tile_px % BLOCK_PX == 0 and MIN_TILE_PX <= manifest.tile_px <= MAX_TILE_PX
    # 12 dates × 2 bands × 8 B = 192 B/px: the largest 512-multiple edge within 1.75 GiB is 3072 (3584² is 2.3 GiB)
    assert manifest.tile_px == 3072 and plan.task_size == TaskBudget().size
    assert len(manifest.tiles) == 7 * 5
    covered = set()
    for tile in manifest.tiles:
        w = tile.window
        assert w.col_off % manifest.tile_px == 0 and w.row_off % manifest.tile_px == 0  # aligned to the grid
        cells = {(c, r) for c in range(w.col_off // 64, (w.col_off + w.width) // 64)
                 for r in range(w.row_off // 64, (w.row_off + w.height) // 64)}
        assert not cells & covered  # no overlap (checked on a 64 px lattice: every window edge is on it or the grid's)
        covered |= cells
        assert tile.halo == Halo()  # pixel-local: no halo
    assert sum(t.window.width * t.window.height for t in manifest.tiles) == 20_000 * 12_345
    last = manifest.tiles[-1]
    assert last.tile_id == "r0004c0006" and last.window == Window(18_432, 12_288, 20_000 - 18_432, 12_345 - 12_288)


def test_the_tile_edge_follows_the_budget_and_its_bounds():
    few_values = plan_run(NDVI_MEDIAN, estimate(50_000, 50_000, dates=1, bands=1))
    assert few_values.manifest.tile_px == MAX_TILE_PX  # 8192² × 8 B = 0.5 GiB: the upper bound
    many_values = plan_run(NDVI_MEDIAN, estimate(50_000, 50_000, dates=100, bands=4))
    # 3,200 B/px: not even 2048² (12.5 GiB) fits 8 GiB tasks; the smallest edge, on a bigger task
    assert many_values.manifest.tile_px == MIN_TILE_PX
    assert many_values.task_size.memory_mib >= 1024 + 4 * 2048 * 2048 * 3200 // 2 ** 20
    assert many_values.task_size in FARGATE_SIZES
    bigger_budget = plan_run(NDVI_MEDIAN, estimate(50_000, 50_000), TaskBudget(TaskSize(4.0, 30 * 1024)))
    assert bigger_budget.manifest.tile_px == 6144 and bigger_budget.task_size == TaskSize(4.0, 30 * 1024)


def test_one_tile_over_budget_is_one_bigger_task_not_a_map_of_one():
    plan = plan_run(NDVI_MEDIAN, estimate(3100, 3100, dates=12, bands=2))  # 1.72 GiB... of 1.75: fits
    assert plan.shape is RunShape.ONE_TASK
    plan = plan_run(NDVI_MEDIAN, estimate(3500, 3000, dates=12, bands=2))  # over budget, edge 3072 < 3500
    assert plan.shape is RunShape.FAN_OUT and len(plan.manifest.tiles) == 2
    plan = plan_run(NDVI_MEDIAN, estimate(2048, 2048, dates=100, bands=4))  # one 2048 tile, 12.5 GiB
    assert plan.shape is RunShape.ONE_TASK and plan.task_size.memory_mib > TaskBudget().size.memory_mib


# --- halos -----------------------------------------------------------------------------------------

def test_a_kernel_gives_every_tile_a_halo_cut_at_the_grid_edges():
    kernel = [[1] * 7 for _ in range(5)]  # 5 rows × 7 columns: 3 px each side covers it
    plan = plan_run(graph(("apply_kernel", {"kernel": kernel})), estimate(10_000, 7_000))
    assert plan.shape is RunShape.FAN_OUT and plan.manifest.halo_px == 3
    tiles = {t.tile_id: t for t in plan.manifest.tiles}
    assert tiles["r0000c0000"].halo == Halo(0, 0, 3, 3)  # north-west corner: nothing beyond the grid
    inner = tiles["r0001c0001"]
    assert inner.halo == Halo(3, 3, 3, 3)
    assert inner.read_window == Window(inner.window.col_off - 3, inner.window.row_off - 3,
                                       inner.window.width + 6, inner.window.height + 6)
    last = plan.manifest.tiles[-1]
    assert last.halo.right == 0 and last.halo.bottom == 0
    assert last.read_window.col_off + last.read_window.width == 10_000


def test_chained_neighbourhoods_add_their_halos_and_resampling_needs_one():
    kernel3 = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    split = analyse_split(graph(("apply_kernel", {"kernel": kernel3}), ("apply_kernel", {"kernel": kernel3}),
                                ("resample_spatial", {"resolution": 20, "method": "cubic"})))
    assert split.splittable and split.halo_px == 1 + 1 + 2
    assert analyse_split(graph(("resample_spatial", {"resolution": 20}))).halo_px == 1  # near


def test_apply_neighborhood_puts_tile_edges_on_neighbourhood_edges_with_the_overlap_as_halo():
    step = graph(("apply_neighborhood", {
        "process": reducer("mean"),
        "size": [{"dimension": "x", "value": 384, "unit": "px"}, {"dimension": "y", "value": 384, "unit": "px"},
                 {"dimension": "t", "value": "P1D"}],
        "overlap": [{"dimension": "x", "value": 16, "unit": "px"}, {"dimension": "y", "value": 16, "unit": "px"}]}))
    split = analyse_split(step)
    assert split.splittable and split.halo_px == 16 and split.tile_multiple_px == 1536  # lcm(512, 384)
    plan = plan_run(step, estimate(20_000, 20_000))
    assert plan.manifest.tile_px % 1536 == 0 and plan.manifest.tile_px % 384 == 0
    assert all(t.window.col_off % 384 == 0 and t.window.row_off % 384 == 0 for t in plan.manifest.tiles)


# --- what cannot be split --------------------------------------------------------------------------

@pytest.mark.parametrize(("step", "named"), [
    (("reduce_dimension", {"dimension": "x", "reducer": reducer("max")}),
     "reduce_dimension 'n0': works along dimension 'x'"),
    (("apply_dimension", {"dimension": "y", "process": reducer("sort")}),
     "apply_dimension 'n0': works along dimension 'y'"),
    (("aggregate_spatial", {"geometries": {"type": "Polygon", "coordinates": []}, "reducer": reducer("median")}),
     "aggregate_spatial 'n0': its reducer (median) cannot be combined"),
    (("aggregate_spatial", {"geometries": {"type": "Polygon", "coordinates": []},
                            "reducer": reducer("quantiles")}),
     "aggregate_spatial 'n0': its reducer (quantiles) cannot be combined"),
    (("apply_neighborhood", {"process": reducer("mean"), "size": [{"dimension": "x", "value": None},
                                                                   {"dimension": "y", "value": None}]}),
     "apply_neighborhood 'n0': its size or overlap over x/y is not given in pixels"),
    (("apply_kernel", {"kernel": {"from_parameter": "k"}}), "apply_kernel 'n0': its kernel is not a literal"),
    (("raster_to_vector", {}), "raster_to_vector 'n0': not known to be tile-local"),
])
def test_graphs_that_cannot_be_split_are_named_with_the_reason_and_get_one_bigger_task(step, named):
    plan = plan_run(graph(step), estimate(13_000, 13_000))  # 30.2 GiB of values
    assert plan.shape is RunShape.ONE_BIG_TASK and plan.manifest is None
    assert any(reason.startswith(named) for reason in plan.reasons()), plan.reasons()
    # 1 GiB + 4 × 30.2 GiB > 120 GiB: the largest task, and the plan says it may not be enough
    assert plan.task_size == LARGEST_TASK == TaskSize(16.0, 120 * 1024) and plan.exceeds_largest_task


def test_combinable_spatial_reducers_and_reducers_over_time_split():
    polygon = {"type": "Polygon", "coordinates": []}
    for name in ("mean", "sum", "count", "min", "max", "sd"):
        assert analyse_split(graph(("aggregate_spatial", {"geometries": polygon, "reducer": reducer(name)}))).splittable
    assert analyse_split(graph(("reduce_dimension", {"dimension": "t", "reducer": reducer("quantiles")}))).splittable


def test_a_process_of_another_namespace_is_not_split():
    nodes = graph(("ndvi", {}))
    nodes["n0"]["namespace"] = "user"
    (obstacle,) = analyse_split(nodes).obstacles
    assert "namespace 'user'" in obstacle.describe()


def test_the_big_task_is_the_smallest_fargate_pair_that_holds_the_estimate():
    plan = plan_run(graph(("reduce_dimension", {"dimension": "x", "reducer": reducer("max")})),
                    estimate(5_000, 5_000, dates=12, bands=2))  # 4.47 GiB of values -> 1 + 17.9 GiB
    assert plan.shape is RunShape.ONE_BIG_TASK and not plan.exceeds_largest_task
    assert plan.task_size == TaskSize(4.0, 19 * 1024)
    assert task_size_for(16 * 1024) == TaskSize(2.0, 16 * 1024)
    assert task_size_for(31 * 1024) == TaskSize(8.0, 32 * 1024)  # 4 vCPU stops at 30 GiB
    assert task_size_for(61 * 1024) == TaskSize(16.0, 64 * 1024)  # 8 vCPU stops at 60 GiB
    assert task_size_for(512, min_vcpu=0.25) == TaskSize(0.25, 512)


def test_fargate_pairs_are_the_documented_ones():
    by_vcpu = {}
    for size in FARGATE_SIZES:
        by_vcpu.setdefault(size.vcpu, []).append(size.memory_mib // 1024 if size.memory_mib >= 1024 else 0.5)
    assert by_vcpu[0.25] == [0.5, 1, 2] and by_vcpu[0.5] == [1, 2, 3, 4] and by_vcpu[1.0] == list(range(2, 9))
    assert by_vcpu[2.0] == list(range(4, 17)) and by_vcpu[4.0] == list(range(8, 31))
    assert by_vcpu[8.0] == list(range(16, 61, 4)) and by_vcpu[16.0] == list(range(32, 121, 8))


# --- with the real dry run ---------------------------------------------------------------------

def test_a_country_sized_request_fans_out_from_the_real_estimate():
    collection = {"id": "c", "cube:dimensions": {"x": {"step": 10}, "y": {"step": 10},
                                                 "bands": {"values": ["B04", "B08"]}}}
    items = [{"bbox": [10, 46, 12, 48], "properties": {"datetime": f"2022-06-{d:02d}T10:00:00Z"}} for d in (2, 7, 12)]
    process = {"load": {"process_id": "load_collection", "arguments": {
        "id": "c", "spatial_extent": {"west": 10.0, "east": 12.0, "south": 46.0, "north": 48.0},
        "temporal_extent": ["2022-06-01", "2022-07-01"], "bands": ["B04", "B08"]}}, **{
        k: v for k, v in NDVI_MEDIAN.items() if k != "load"}}
    dry_run = estimate_graph(process, lambda cid: collection, lambda cid, search: items)
    plan = plan_run(process, dry_run)
    (load,) = dry_run.loads
    assert plan.shape is RunShape.FAN_OUT and (load.dates, load.bands) == (3, 2)
    # 48 B/px: 8192² is 3 GiB > 1.75 GiB, 6144² is 1.7 GiB
    assert plan.manifest.tile_px == 6144
    assert (plan.manifest.grid_width, plan.manifest.grid_height) == (load.width, load.height)
    assert len(plan.manifest.tiles) == -(-load.width // 6144) * -(-load.height // 6144)


# --- the manifest -------------------------------------------------------------------------------

def test_the_tile_manifest_round_trips_through_json_and_gives_the_map_its_items():
    plan = plan_run(graph(("apply_kernel", {"kernel": [[1, 1, 1]] * 3})), estimate(9_000, 4_000))
    document = json.loads(json.dumps(plan.manifest.to_json()))
    assert TileManifest.from_json(document) == plan.manifest
    items = plan.manifest.map_items()
    assert isinstance(items, list) and items[1] == {"tile_id": "r0000c0001", "window": [3072, 0, 3072, 3072],
                                                    "halo": [1, 0, 1, 1]}
    assert Tile.from_json(items[1]) == plan.manifest.tiles[1]


@pytest.mark.parametrize("broken", [
    [],
    {"grid": {"width": 0, "height": 5}, "tile_px": 2048, "halo_px": 0, "task": {"vcpu": 2, "memory_mib": 8192},
     "tiles": [{"tile_id": "a", "window": [0, 0, 1, 1]}]},
    {"grid": {"width": 5, "height": 5}, "tile_px": 2048, "halo_px": 0, "task": {"vcpu": 2, "memory_mib": 8000},
     "tiles": [{"tile_id": "a", "window": [0, 0, 1, 1]}]},
    {"grid": {"width": 5, "height": 5}, "tile_px": 2048, "halo_px": 0, "task": {"vcpu": 2, "memory_mib": 8192},
     "tiles": []},
    {"grid": {"width": 5, "height": 5}, "tile_px": 2048, "halo_px": 0, "task": {"vcpu": "two", "memory_mib": 8192},
     "tiles": [{"tile_id": "a", "window": [0, 0, 1, 1]}]},
    {"grid": {"width": 5, "height": 5}, "tile_px": 2048, "halo_px": 0, "task": {"vcpu": 2, "memory_mib": 8192},
     "tiles": [{"tile_id": "a", "window": [0, 0, 0, 1]}]},
    {"grid": {"width": 5, "height": 5}, "tile_px": 2048, "halo_px": 0, "task": {"vcpu": 2, "memory_mib": 8192},
     "tiles": [{"tile_id": "a", "window": [0, 0, 1, 1], "halo": [-1, 0, 0, 0]}]},
    {"grid": {"width": 5, "height": 5}, "tile_px": 2048, "halo_px": 0, "task": {"vcpu": 2, "memory_mib": 8192},
     "tiles": [{"tile_id": "a", "window": [0, 0, 1, 1]}, {"tile_id": "a", "window": [1, 0, 1, 1]}]},
])
def test_a_broken_tile_manifest_is_refused(broken):
    with pytest.raises(RunContractError):
        TileManifest.from_json(broken)


def test_tile_windows_of_a_grid_smaller_than_the_halo():
    (tile,) = tile_windows(5, 3, 2048, halo_px=8)
    assert tile.window == Window(0, 0, 5, 3) and tile.halo == Halo()


def test_the_default_budget_is_the_processing_job_of_today():
    from stratus import resources

    assert TaskBudget().size == TaskSize(resources.PROCESSING_VCPU, resources.PROCESSING_MEMORY_MB)
    assert TaskBudget().size in FARGATE_SIZES
