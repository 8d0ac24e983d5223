"""Does a job run as one task or fan out over tiles, and which tiles (the planner of "Large areas").

From the process graph, its dry-run estimate (`stratus.domain.estimate.estimate_graph`) and the memory
budget of one task, `plan_run` decides:

- ONE task (today's path) when the whole job fits one task's budget;
- FAN-OUT when it does not and every process is tile-local: the output grid is cut into square tiles
  aligned to it (edge chosen from the budget, 2,048-8,192 px, a multiple of the COG block size), each
  with a halo where a process needs neighbouring pixels (`apply_kernel`, `apply_neighborhood`,
  resampling);
- ONE BIG task when the graph cannot be split correctly (the reasons are named): its CPU and memory
  are chosen from the estimate among Fargate's valid pairs, up to 16 vCPU / 120 GiB.

Windows are in pixels of the output grid (column, row from the north-west corner); the container
turns them into georeferenced windows of the grid it plans. Plain Python (the API imports it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from stratus import resources
from stratus.domain.estimate import BYTES_PER_VALUE, GraphEstimate
from stratus.run_contract import RunContractError
from stratus.tiling_rules import CALLER_LOCAL, DIMENSION_ARGUMENTS, PIXEL_LOCAL

BLOCK_PX = resources.FANOUT_BLOCK_PX
MIN_TILE_PX = resources.FANOUT_MIN_TILE_PX
MAX_TILE_PX = resources.FANOUT_MAX_TILE_PX
# Intermediate cubes of a graph come on top of the loaded values (float64): a task's memory holds
# about this many copies of its loaded data.
WORKING_SET_FACTOR = 4
TASK_OVERHEAD_MIB = 1024  # Python, GDAL caches, the runtime


# --- Fargate task sizes -------------------------------------------------------------------------

@dataclass(frozen=True, order=True)
class TaskSize:
    """A valid Fargate CPU/memory pair (AWS Batch on Fargate accepts the same)."""

    vcpu: float
    memory_mib: int


def _fargate_sizes() -> tuple[TaskSize, ...]:
    gib = 1024
    pairs = [(0.25, m) for m in (512, 1024, 2048)]
    pairs += [(0.5, g * gib) for g in range(1, 5)]
    pairs += [(1.0, g * gib) for g in range(2, 9)]
    pairs += [(2.0, g * gib) for g in range(4, 17)]
    pairs += [(4.0, g * gib) for g in range(8, 31)]
    pairs += [(8.0, g * gib) for g in range(16, 61, 4)]
    pairs += [(16.0, g * gib) for g in range(32, 121, 8)]
    return tuple(TaskSize(vcpu, memory) for vcpu, memory in pairs)


FARGATE_SIZES = _fargate_sizes()
LARGEST_TASK = max(FARGATE_SIZES, key=lambda s: (s.memory_mib, s.vcpu))


def task_size_for(memory_mib: int, *, min_vcpu: float = 2.0) -> TaskSize:
    """The smallest valid pair with at least `memory_mib` and `min_vcpu`; the largest task when none has."""
    fitting = [s for s in FARGATE_SIZES if s.memory_mib >= memory_mib and s.vcpu >= min_vcpu]
    return min(fitting, key=lambda s: (s.vcpu, s.memory_mib)) if fitting else LARGEST_TASK


@dataclass(frozen=True)
class TaskBudget:
    """What one task of a fanned-out job may hold: its Fargate size; the loaded values of a tile (with
    its halo) must fit `memory_mib` with the working set and the overhead."""

    size: TaskSize = TaskSize(2.0, 8192)  # `stratus.resources.PROCESSING_VCPU` / `PROCESSING_MEMORY_MB`
    max_load_bytes: int | None = None  # a smaller budget than the size gives (tests and local runs: small tiles)

    @property
    def load_bytes(self) -> int:
        """Bytes of loaded (float64) values one task may hold."""
        by_size = max(0, (self.size.memory_mib - TASK_OVERHEAD_MIB) * 1024 * 1024 // WORKING_SET_FACTOR)
        return by_size if self.max_load_bytes is None else min(by_size, self.max_load_bytes)


@dataclass(frozen=True)
class TileBounds:
    """The tile edges a plan may choose: from `min_px` to `max_px`, a multiple of `block_px`. Production
    keeps the defaults; tests and local runs use small tiles (`stratus.settings`)."""

    min_px: int = MIN_TILE_PX
    max_px: int = MAX_TILE_PX
    block_px: int = BLOCK_PX


# --- the graph: what needs neighbours, what cannot be split --------------------------------------

# A result pixel depends on the same pixel of the inputs alone (the engine's tiling allow-list,
# `stratus.tiling_rules.PIXEL_LOCAL`), or only on its x/y neighbourhood (HALO_PROCESSES), or on an area
# that a tile cuts to its window (filters, masks).
TILE_LOCAL = PIXEL_LOCAL | {
    "filter_bbox", "filter_spatial", "mask_polygon",
    "aggregate_spatial",  # splittable when its reducer combines (checked below)
}
HALO_PROCESSES = frozenset({"apply_kernel", "apply_neighborhood", "resample_spatial", "resample_cube_spatial"})
SPATIAL_DIMENSIONS = frozenset({"x", "y"})
# Reducers whose per-tile partial results combine into the whole-area result (mean via sum and
# count, sd and variance via count, sum and sum of squares).
COMBINABLE_REDUCERS = frozenset({"sum", "count", "min", "max", "mean", "sd", "variance", "first", "last"})
# Output pixels each side a resampling method reads beyond its own footprint (in output pixels).
RESAMPLING_HALO_PX = {"near": 1, "bilinear": 1, "cubic": 2, "cubicspline": 2, "lanczos": 3}
DEFAULT_RESAMPLING_HALO_PX = 1  # average, mode, min, max, med, q1, q3, sum, rms: the footprint plus one


@dataclass(frozen=True)
class Unsplittable:
    """Why a graph cannot be cut into tiles that give exactly the whole-area result."""

    node_id: str
    process_id: str
    reason: str

    def describe(self) -> str:
        return f"{self.process_id} '{self.node_id}': {self.reason}"


@dataclass(frozen=True)
class GraphSplit:
    """What tiling a graph needs: the halo (px of the output grid, each side), the edge tile sizes must
    be a multiple of, and the reasons it cannot be split (none when it can)."""

    halo_px: int = 0
    tile_multiple_px: int = BLOCK_PX
    obstacles: tuple[Unsplittable, ...] = ()

    @property
    def splittable(self) -> bool:
        return not self.obstacles


def analyse_split(process_graph: Mapping[str, Any], block_px: int = BLOCK_PX) -> GraphSplit:
    """Walks the graph and its callbacks. Halos add up (a conservative bound for chained kernels)."""
    halo, multiple, obstacles = 0, block_px, []
    for node_id, node, nested in _nodes(process_graph):
        process_id = str(node.get("process_id"))
        arguments = node.get("arguments") or {}
        namespace = node.get("namespace")
        if namespace not in (None, "backend"):
            obstacles.append(Unsplittable(node_id, process_id,
                                          f"a process from namespace '{namespace}' is not known to be tile-local"))
            continue
        if process_id in HALO_PROCESSES:
            node_halo, node_multiple, obstacle = _halo_of(node_id, process_id, arguments)
            if obstacle is not None:
                obstacles.append(obstacle)
            halo += node_halo
            multiple = _lcm(multiple, node_multiple)
            continue
        if process_id in CALLER_LOCAL and nested:
            continue  # as local as the process whose callback it is
        if process_id not in TILE_LOCAL:
            obstacles.append(Unsplittable(node_id, process_id, "not known to be tile-local"))
            continue
        for name in DIMENSION_ARGUMENTS.get(process_id, ()):
            value = arguments.get(name)
            if value is not None and (not isinstance(value, str) or value in SPATIAL_DIMENSIONS):
                obstacles.append(Unsplittable(node_id, process_id,
                                              f"works along dimension {value!r}: it needs the whole extent"))
        if process_id in ("load_collection", "load_stac") and nested:
            obstacles.append(Unsplittable(node_id, process_id, "a load inside a callback"))
        if process_id == "aggregate_spatial":
            kept = _reducer_processes(arguments.get("reducer"))
            uncombinable = sorted(kept - COMBINABLE_REDUCERS)
            if uncombinable or not kept:
                what = ", ".join(uncombinable) if uncombinable else "an unknown reducer"
                obstacles.append(Unsplittable(
                    node_id, process_id, f"its reducer ({what}) cannot be combined from per-tile results"))
    return GraphSplit(halo, multiple, tuple(obstacles))


def _nodes(graph: Mapping[str, Any], nested: bool = False) -> Iterable[tuple[str, Mapping[str, Any], bool]]:
    for node_id, node in graph.items():
        if not isinstance(node, Mapping):
            continue
        yield node_id, node, nested
        for callback in _callbacks(node.get("arguments") or {}):
            yield from _nodes(callback, True)


def _callbacks(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        if isinstance(value.get("process_graph"), Mapping):
            return [value["process_graph"]]
        return [graph for item in value.values() for graph in _callbacks(item)]
    if isinstance(value, list):
        return [graph for item in value for graph in _callbacks(item)]
    return []


def _reducer_processes(reducer: Any) -> set[str]:
    if not isinstance(reducer, Mapping) or not isinstance(reducer.get("process_graph"), Mapping):
        return set()
    return {str(node.get("process_id")) for _, node, _ in _nodes(reducer["process_graph"])}


def _halo_of(node_id: str, process_id: str, arguments: Mapping[str, Any]) -> tuple[int, int, Unsplittable | None]:
    """(halo px, tile multiple px (1: none), obstacle) of one neighbourhood or resampling process."""
    if process_id == "apply_kernel":
        kernel = arguments.get("kernel")
        if not (isinstance(kernel, list) and kernel and all(isinstance(row, list) and row for row in kernel)):
            return 0, 1, Unsplittable(node_id, process_id, "its kernel is not a literal 2-D array")
        return max(len(kernel), max(len(row) for row in kernel)) // 2, 1, None
    if process_id == "apply_neighborhood":
        sizes = _spatial_pixels(arguments.get("size"))
        overlaps = _spatial_pixels(arguments.get("overlap"))
        if sizes is None or len(sizes) < 2 or overlaps is None:
            return 0, 1, Unsplittable(
                node_id, process_id, "its size or overlap over x/y is not given in pixels: neighbourhoods "
                "could not be placed as in the whole-area run")
        # Tiles start on neighbourhood edges, so every neighbourhood is the one of the whole-area run.
        return max(overlaps.values(), default=0), _lcm(sizes["x"], sizes["y"]), None
    method = arguments.get("method") if isinstance(arguments.get("method"), str) else "near"
    return RESAMPLING_HALO_PX.get(method, DEFAULT_RESAMPLING_HALO_PX), 1, None


def _spatial_pixels(value: Any) -> dict[str, int] | None:
    """{"x": px, "y": px} of an apply_neighborhood `size`/`overlap` list; None when not in pixels."""
    if value is None:
        return {}
    if not isinstance(value, list):
        return None
    result = {}
    for entry in value:
        if not isinstance(entry, Mapping) or entry.get("dimension") not in SPATIAL_DIMENSIONS:
            continue
        amount, unit = entry.get("value"), entry.get("unit", "px")
        if unit != "px" or not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            return None
        result[entry["dimension"]] = amount
    return result


def _lcm(a: int, b: int) -> int:
    return a * b // math.gcd(a, b) if a and b else max(a, b)


# --- the plan ------------------------------------------------------------------------------------

class RunShape(str, Enum):
    ONE_TASK = "one_task"
    FAN_OUT = "fan_out"
    ONE_BIG_TASK = "one_big_task"


@dataclass(frozen=True)
class Window:
    """Pixels of the output grid: columns `col_off`..`col_off + width`, rows likewise, from the north-west."""

    col_off: int
    row_off: int
    width: int
    height: int

    def to_json(self) -> list[int]:
        return [self.col_off, self.row_off, self.width, self.height]

    @classmethod
    def from_json(cls, value: Any) -> Window:
        if not (isinstance(value, list) and len(value) == 4 and all(
                isinstance(v, int) and not isinstance(v, bool) for v in value)) or min(value[2:]) <= 0 or min(
                value[:2]) < 0:
            raise RunContractError(f"a tile window is [col_off, row_off, width, height] in pixels: {value!r}")
        return cls(*value)


@dataclass(frozen=True)
class Halo:
    """Extra pixels read each side of a tile's window (cut at the grid's edges)."""

    left: int = 0
    top: int = 0
    right: int = 0
    bottom: int = 0

    def to_json(self) -> list[int]:
        return [self.left, self.top, self.right, self.bottom]

    @classmethod
    def from_json(cls, value: Any) -> Halo:
        if not (isinstance(value, list) and len(value) == 4 and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
            raise RunContractError(f"a tile halo is [left, top, right, bottom] in pixels: {value!r}")
        return cls(*value)


@dataclass(frozen=True)
class Tile:
    tile_id: str
    window: Window  # what the tile writes
    halo: Halo = Halo()  # what it reads around the window

    @property
    def read_window(self) -> Window:
        w, h = self.window, self.halo
        return Window(w.col_off - h.left, w.row_off - h.top, w.width + h.left + h.right,
                      w.height + h.top + h.bottom)

    def to_json(self) -> dict[str, Any]:
        return {"tile_id": self.tile_id, "window": self.window.to_json(), "halo": self.halo.to_json()}

    @classmethod
    def from_json(cls, document: Any) -> Tile:
        if not isinstance(document, Mapping) or not isinstance(document.get("tile_id"), str):
            raise RunContractError("every tile of the manifest needs a `tile_id`")
        return cls(document["tile_id"], Window.from_json(document.get("window")),
                   Halo.from_json(document.get("halo", [0, 0, 0, 0])))


@dataclass(frozen=True)
class TileManifest:
    """The tiles of a fanned-out run, in the run contract's style. The planner step writes it to S3
    beside the run's snapshot; the Distributed Map reads `map_items()` (a JSON array: ItemReader takes
    no object) and each tile task gets one item."""

    grid_width: int
    grid_height: int
    tile_px: int
    halo_px: int
    tiles: tuple[Tile, ...] = field(default_factory=tuple)
    task_size: TaskSize = TaskBudget().size

    def to_json(self) -> dict[str, Any]:
        return {"grid": {"width": self.grid_width, "height": self.grid_height}, "tile_px": self.tile_px,
                "halo_px": self.halo_px,
                "task": {"vcpu": self.task_size.vcpu, "memory_mib": self.task_size.memory_mib},
                "tiles": [tile.to_json() for tile in self.tiles]}

    @classmethod
    def from_json(cls, document: Any) -> TileManifest:
        """Raises `RunContractError`."""
        if not isinstance(document, Mapping):
            raise RunContractError("the tile manifest is not a JSON object")
        grid, task, tiles = document.get("grid"), document.get("task"), document.get("tiles")
        if not isinstance(grid, Mapping) or not all(_positive_int(grid.get(k)) for k in ("width", "height")):
            raise RunContractError("the tile manifest's grid needs a positive `width` and `height`")
        if not _positive_int(document.get("tile_px")) or not _non_negative_int(document.get("halo_px")):
            raise RunContractError("the tile manifest needs `tile_px` > 0 and `halo_px` >= 0")
        task_size = _task_size(task)
        if task_size not in FARGATE_SIZES:
            raise RunContractError(f"the tile manifest's task is not a Fargate CPU/memory pair: {task!r}")
        if not isinstance(tiles, list) or not tiles:
            raise RunContractError("the tile manifest lists no tiles")
        parsed = tuple(Tile.from_json(t) for t in tiles)
        if len({t.tile_id for t in parsed}) != len(parsed):
            raise RunContractError("the tile manifest lists a tile id twice")
        return cls(grid["width"], grid["height"], document["tile_px"], document["halo_px"], parsed, task_size)

    def map_items(self) -> list[dict[str, Any]]:
        return [tile.to_json() for tile in self.tiles]


def _task_size(task: Any) -> TaskSize | None:
    if not isinstance(task, Mapping):
        return None
    vcpu, memory = task.get("vcpu"), task.get("memory_mib")
    if not (isinstance(vcpu, (int, float)) and _positive_int(memory)) or isinstance(vcpu, bool):
        return None
    return TaskSize(float(vcpu), memory)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _non_negative_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class RunPlan:
    shape: RunShape
    task_size: TaskSize  # of the one task, or of each tile's task
    manifest: TileManifest | None = None  # FAN_OUT only
    obstacles: tuple[Unsplittable, ...] = ()  # ONE_BIG_TASK: why it was not split
    exceeds_largest_task: bool = False  # the estimate needs more memory than the largest task has

    def reasons(self) -> list[str]:
        return [o.describe() for o in self.obstacles]


def output_grid_of(estimate: GraphEstimate) -> tuple[int, int]:
    """The output grid's size (px): the largest load's (loads of one job land on one grid)."""
    if not estimate.loads:
        return 0, 0
    return max(load.width for load in estimate.loads), max(load.height for load in estimate.loads)


def bytes_per_pixel(estimate: GraphEstimate) -> int:
    """Loaded bytes per output pixel: every date and band of every load, float64."""
    return sum(load.dates * load.bands for load in estimate.loads) * BYTES_PER_VALUE


def memory_for(load_bytes: int) -> int:
    """MiB a task needs to hold `load_bytes` of loaded values with its working set."""
    return TASK_OVERHEAD_MIB + math.ceil(load_bytes * WORKING_SET_FACTOR / (1024 * 1024))


def choose_tile_px(per_pixel: int, split: GraphSplit, budget: TaskBudget, bounds: TileBounds = TileBounds()) -> int:
    """The largest edge (a multiple of the block and neighbourhood sizes, 2,048-8,192 px) whose tile
    plus halo fits the budget; the smallest allowed edge when none does (its task then gets bigger)."""
    step = split.tile_multiple_px
    smallest = max(step, math.ceil(bounds.min_px / step) * step)
    best = smallest
    edge = smallest
    while edge <= bounds.max_px:
        if (edge + 2 * split.halo_px) ** 2 * per_pixel <= budget.load_bytes:
            best = edge
        edge += step
    return best


def plan_run(process_graph: Mapping[str, Any], estimate: GraphEstimate,
             budget: TaskBudget = TaskBudget(), bounds: TileBounds = TileBounds()) -> RunPlan:
    """One task, a fan-out over tiles, or one big task; see the module's docstring."""
    width, height = output_grid_of(estimate)
    if estimate.cube_bytes <= budget.load_bytes or not width or not height:
        return RunPlan(RunShape.ONE_TASK, budget.size)
    split = analyse_split(process_graph, bounds.block_px)
    if not split.splittable:
        needed = memory_for(estimate.cube_bytes)
        size = task_size_for(needed, min_vcpu=budget.size.vcpu)
        return RunPlan(RunShape.ONE_BIG_TASK, size, obstacles=split.obstacles,
                       exceeds_largest_task=needed > LARGEST_TASK.memory_mib)
    per_pixel = bytes_per_pixel(estimate)
    edge = choose_tile_px(per_pixel, split, budget, bounds)
    tiles = tile_windows(width, height, edge, split.halo_px)
    if len(tiles) == 1:  # over budget, but one tile covers it: no map for a single item
        size = task_size_for(memory_for(estimate.cube_bytes), min_vcpu=budget.size.vcpu)
        return RunPlan(RunShape.ONE_TASK, size)
    largest_read = max(t.read_window.width * t.read_window.height for t in tiles)
    size = budget.size
    if largest_read * per_pixel > budget.load_bytes:
        size = task_size_for(memory_for(largest_read * per_pixel), min_vcpu=budget.size.vcpu)
    manifest = TileManifest(width, height, edge, split.halo_px, tuple(tiles), size)
    return RunPlan(RunShape.FAN_OUT, size, manifest=manifest)


def tile_windows(width: int, height: int, edge: int, halo_px: int = 0) -> list[Tile]:
    """Tiles of edge × edge px (less at the east and south edges) row by row from the north-west corner,
    each with its halo cut at the grid's edges. Ids name the tile's row and column."""
    tiles = []
    for row_index, row in enumerate(range(0, height, edge)):
        for col_index, col in enumerate(range(0, width, edge)):
            window = Window(col, row, min(edge, width - col), min(edge, height - row))
            halo = Halo(min(halo_px, col), min(halo_px, row),
                        min(halo_px, width - col - window.width), min(halo_px, height - row - window.height))
            tiles.append(Tile(f"r{row_index:04d}c{col_index:04d}", window, halo))
    return tiles
