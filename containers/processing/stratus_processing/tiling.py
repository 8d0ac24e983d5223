"""Tiled execution: memory bounded by the tile, not by the area of the job.

When every process of a graph is pixel-local in x and y (a result pixel depends only on the same
pixel of its inputs: band math, reductions over `t` or `bands`, temporal filters and aggregations,
masks by another cube on the same grid, ...), evaluating the graph on a window of the grid gives
exactly that window of the whole result. So the runner:

1. checks the graph against the allow-list below (`tiling_obstacle`); anything else (neighbourhoods,
   resampling, spatial aggregation, vector processes, JSON output, ...) is evaluated on the whole
   cube as before, which is correct, just not bounded;
2. plans every load node once (`plan_load`: the STAC search, properties filter, time steps and the
   full target grid), evaluating only that node; all loads must land on one grid;
3. splits the grid into tiles (the largest edge of 1024, 512, 256, ... px whose loaded data fits in
   128 MiB, 32 MiB for graphs that predict with a model: `choose_tile_size`, `TileBudget`; aligned to
   the COGs' 512 px blocks), and evaluates the whole graph
   once per tile, two tiles at a time (GDAL and numpy release the GIL, so reading one tile
   overlaps computing the other; remote assets are fetched ahead, `ReadAhead`):
   `load_*` reads only the tile's window (`EvalEnv.tile`), `save_result` writes the tile into its
   output files by window (`io.save.RasterSink`);
4. publishes the outputs once every tile is written (GTiff: the COG copy; netCDF: the file).

Values are computed in the loads' type (float32 or float64, `precision`), as in whole-cube evaluation,
so both paths give bit-identical results. Tile budgets count loaded values in their type (a float32
load makes tiles of twice the area for the same bytes); read-ahead budgets count them as float64
whatever their type (the windows are kept in the files' type, the same for every graph).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from typing import Any

from affine import Affine
from stratus.domain.load_needs import LoadNeeds
from stratus.events import LogLevel
from stratus.file_formats import GTIFF, NETCDF, find_format
from stratus.tiling_rules import CALLER_LOCAL, DIMENSION_ARGUMENTS, LOAD_PROCESSES, PIXEL_LOCAL, SAVE_PROCESS

from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.graph import ProcessGraph, numeric_conventions, evaluate_graph
from stratus_processing.grid import Grid
from stratus_processing.io.load import LoadPlan, prefetch
from stratus_processing.io.save import RasterSink, open_sink, window_of, write_env
from stratus_processing.load_extent import load_needs_of
from stratus_processing.memory import bound_heaps, release_memory, trim_heaps
from stratus_processing.precision import outputs_single_precision
from stratus_processing.registry import DEFAULT_REGISTRY, ProcessRegistry
from stratus_processing.reporting import Reporter
from stratus_processing.results import AssetRecord, ResultStore

logger = logging.getLogger("stratus_processing")

TILED_FORMATS = frozenset({GTIFF, NETCDF})
_SPATIAL_DIMENSIONS = frozenset({cubes.X, cubes.Y})

# Tile edges tried, largest first (px): multiples or divisors of the COG block size, so tiles write
# whole blocks.
TILE_SIZES = (1024, 512, 256, 128, 64)
# Bytes of loaded data (in the loads' type, all dates × bands of all loads) one tile may hold: the
# largest edge whose tile fits is taken. Intermediate cubes of the graph come on top (band math on a
# tile makes a few of its size, in the same type), and two tiles are in flight, so memory grows with
# dates up to the cap and stays flat beyond it (smaller tiles). Larger tiles are faster: each tile costs
# a few ms of Python (graph evaluation, xarray objects) that holds the GIL the other tile needs.
# engine_floor, float32 NDVI mean (measured while local files were still fetched ahead): 4 dates ×
# 5,490² px in 3.27 s with 1024 px tiles, 3.56 s with 512 px (peak RSS 500 / 405 MiB); 12 dates ×
# 10,980² px (96 MiB a 1024 px tile) in 23.5 s against 30.1 s (704 / 442 MiB); 256 px tiles of 12
# float64 dates took 68 s where 512 px ones took 42 s.
TILE_LOAD_CAP_BYTES = 128 * 1024 * 1024
# What a tile of a HEAVY_PER_PIXEL graph may hold.
TILE_LOAD_BUDGET_BYTES = 32 * 1024 * 1024
TILE_WORKERS = 2
# Processes whose work per pixel dwarfs a tile's fixed cost and its reads (a forest's trees: seconds
# per 512 px tile): a graph that calls one keeps its tiles within TILE_LOAD_BUDGET_BYTES whatever their
# edge, since smaller tiles cost it no time, and reads one batch ahead, which hides the reads. 40
# predictors over 4,096² px: 256 px tiles, as fast as 512 px ones, peak RSS 693 → 580 MiB, and 551 MiB
# with one batch ahead. One 512 px tile at a time holds as little but loses the overlap of one tile's
# reads with the other's prediction (1.3× the time).
HEAVY_PER_PIXEL = frozenset({"predict_random_forest", "predict_class_probabilities"})
# Tiles whose blocks are fetched together ahead of their evaluation (neighbours in a row, as one
# window per asset: GDAL merges their byte ranges into one request). Reading tile by tile would cost
# a round trip per tile and asset; fetching the next batches while this one is evaluated hides them.
# Four 1024 px tiles of a uint16 band are 8 MiB while fetched.
READ_AHEAD_TILES = 4
# Loaded bytes (counted as float64, whatever the loads' type) of the tiles of one batch: a batch's
# windows are kept decoded in the files' type (about a quarter of that for uint16 bands) until its
# tiles have read them, so fewer tiles make a batch when dates × bands fill each tile, and memory stays
# flat in them.
READ_AHEAD_BATCH_BUDGET_BYTES = 64 * 1024 * 1024
# Batches queued ahead of the one being evaluated. They are fetched one after another, on one
# thread: rows of a COG lie one after another in the file, so /vsicurl/ sees a sequential read and
# fetches further ahead by itself; in parallel, two fetches would download the same bytes.
READ_AHEAD_BATCHES = 2
# Loaded bytes (counted as READ_AHEAD_BATCH_BUDGET_BYTES) of the batches whose windows are kept at once,
# the one being evaluated and those ahead: when tiles are so heavy that a batch of one tile goes
# beyond its budget (40 predictors: 80 MiB a 512 px tile), fewer batches go ahead, at least one.
READ_AHEAD_KEPT_BUDGET_BYTES = (READ_AHEAD_BATCHES + 1) * READ_AHEAD_BATCH_BUDGET_BYTES
# Seconds between two trims of glibc's heaps after tiles (`memory.trim_heaps`).
HEAP_TRIM_INTERVAL_S = 1.0
# Key of the output of a graph without save_result (saved as GTiff, as in whole-cube evaluation).
IMPLICIT_OUTPUT = "__result__"


class TilingNotApplicable(Exception):
    """Raised during a tiled run when the graph turns out not to be tileable after all (e.g. its
    result is not a raster cube): the runner discards the tiles and evaluates the whole cube."""


@dataclass(frozen=True)
class TileContext:
    """What a process sees of tiled execution (`EvalEnv.tile`)."""

    loads: dict[str, LoadPlan]  # per load node id, planned once for the whole grid
    # per load node id, what the whole graph keeps of it (each load is planned on its own)
    load_needs: Mapping[str, LoadNeeds] = field(default_factory=dict)
    grid: Grid | None = None  # the tile being evaluated; None while the loads are being planned
    outputs: TileOutputs | None = None
    workers: int = 1  # tiles evaluated side by side: a process that uses threads takes its share of the CPUs

    @property
    def planning(self) -> bool:
        return self.grid is None


class TileOutputs:
    """The raster sinks of a tiled run, one per save_result node, shared by all tile evaluations."""

    def __init__(self, store: ResultStore, grid: Grid, reporter: Reporter) -> None:
        self.store = store
        self.grid = grid
        self._reporter = reporter
        self._sinks: dict[str, RasterSink] = {}
        self._lock = threading.Lock()

    def write(self, node_id: str, format_name: str, options: dict[str, Any], cube: Any, *,
              path: list[dict[str, Any]] | None = None) -> None:
        """Write one tile's cube for output `node_id` (raises TilingNotApplicable when it isn't a
        window of the output grid)."""
        if not cubes.is_cube(cube):
            raise TilingNotApplicable("the data to save is not a raster data cube")
        cube = cropped_to(cube, self.grid)
        with self._lock:
            sink = self._sinks.get(node_id)
            if sink is None:
                sink = self._sinks[node_id] = open_sink(format_name, self.store, self.grid, options)
                sizes = {str(d): s for d, s in cube.sizes.items()} | {cubes.Y: self.grid.height,
                                                                      cubes.X: self.grid.width}
                shape = " × ".join(f"{dim} {size}" for dim, size in sizes.items())
                self._reporter.log(f"save_result: writing result as {format_name} ({shape}) tile by tile",
                                   path=path)
        try:
            sink.write(cube)
        except ValueError as exc:
            raise TilingNotApplicable(str(exc)) from exc

    def finalize(self, order: Iterable[str]) -> list[AssetRecord]:
        """Publish every output, in `order` of node ids (then any other), as whole-cube evaluation
        would have: the graph's end nodes in evaluation order."""
        rank = {node_id: index for index, node_id in enumerate(order)}
        ranked = sorted(self._sinks, key=lambda n: (rank.get(n, len(rank)), n))
        records = []
        for node_id in ranked:
            written = self._sinks.pop(node_id).finalize()
            self._reporter.log(f"save_result: wrote {', '.join(r.name for r in written)}")
            records += written
        return records

    def discard(self) -> None:
        for sink in self._sinks.values():
            sink.discard()
        self._sinks.clear()


def cropped_to(cube: Any, grid: Grid) -> Any:
    """The part of `cube` on `grid` when the cube reaches beyond it (a fanned-out tile's halo), else
    the cube itself; raises TilingNotApplicable when they are not on one grid."""
    own = cubes.grid_of(cube)
    try:
        row, col = window_of(grid, own)
    except ValueError:
        return cube  # not larger than the grid: the sink places it (or refuses it) itself
    if (row, col, grid.width, grid.height) == (0, 0, own.width, own.height):
        return cube
    return cube.isel({cubes.Y: slice(row, row + grid.height), cubes.X: slice(col, col + grid.width)})


def window_grid(grid: Grid, col_off: int, row_off: int, width: int, height: int) -> Grid:
    """A window of `grid` (pixel offsets from its north-west corner)."""
    if col_off < 0 or row_off < 0 or col_off + width > grid.width or row_off + height > grid.height:
        raise ValueError(f"the window [{col_off}, {row_off}, {width}, {height}] lies outside the "
                         f"{grid.width} × {grid.height} px grid")
    return Grid(grid.crs, grid.transform @ Affine.translation(col_off, row_off), width, height)


class _TileReporter:
    """Tile evaluations repeat the same steps many times: only warnings and errors go through,
    each distinct message once; progress is counted in tiles by the runner."""

    def __init__(self, reporter: Reporter) -> None:
        self._reporter = reporter
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def log(self, message: str, *, level: LogLevel = LogLevel.INFO, path: list[dict[str, Any]] | None = None,
            data: Any = None, code: str | None = None) -> None:
        if level not in (LogLevel.WARNING, LogLevel.ERROR):
            return
        with self._lock:
            if message in self._seen:
                return
            self._seen.add(message)
        self._reporter.log(message, level=level, path=path, data=data, code=code)

    def progress(self, fraction: float) -> None:
        pass


# --- which graphs ---------------------------------------------------------------------------------

def tiling_obstacle(graph: ProcessGraph, *, top_level: bool = True) -> str | None:
    """Why the graph can't be evaluated tile by tile, or None when it can."""
    if top_level and not any(node.process_id in LOAD_PROCESSES for node in graph.nodes.values()):
        return "the graph loads no data"
    for node in graph.nodes.values():
        reason = _node_obstacle(node.process_id, node.arguments, node.namespace, top_level=top_level)
        if reason is not None:
            return f"{reason} (node '{node.node_id}')"
        if node.process_id in LOAD_PROCESSES:
            continue  # its callbacks (properties) run once, while planning
        for child in _callbacks(node.arguments):
            reason = tiling_obstacle(child, top_level=False)
            if reason is not None:
                return reason
    return None


def _node_obstacle(process_id: str, arguments: Mapping[str, Any], namespace: str | None, *,
                   top_level: bool) -> str | None:
    if namespace not in (None, "backend"):
        return f"process '{process_id}' from namespace '{namespace}' is not known to be pixel-local"
    if process_id in CALLER_LOCAL:
        return f"'{process_id}' at the top level sees the whole cube" if top_level else None
    if process_id not in PIXEL_LOCAL:
        return f"process '{process_id}' is not pixel-local"
    for name in DIMENSION_ARGUMENTS.get(process_id, ()):
        value = arguments.get(name)
        if value is not None and (not isinstance(value, str) or value in _SPATIAL_DIMENSIONS):
            return f"'{process_id}' works along dimension {value!r}"
    if process_id in LOAD_PROCESSES:
        if not top_level:
            return f"'{process_id}' inside a callback"
        if _references_nodes(arguments):
            return f"the arguments of '{process_id}' depend on other nodes"
    if process_id == SAVE_PROCESS:
        format_name = find_format(arguments.get("format")) if isinstance(arguments.get("format"), str) else None
        if format_name not in TILED_FORMATS:
            return f"save_result format {arguments.get('format')!r} is not written by tile"
    return None


def _callbacks(value: Any) -> list[ProcessGraph]:
    if isinstance(value, Mapping):
        if isinstance(value.get("process_graph"), Mapping):
            return [ProcessGraph(value["process_graph"])]
        return [graph for item in value.values() for graph in _callbacks(item)]
    if isinstance(value, list):
        return [graph for item in value for graph in _callbacks(item)]
    return []


def _calls_any(graph: ProcessGraph, process_ids: frozenset[str]) -> bool:
    """Whether the graph or one of its callbacks calls one of `process_ids`."""
    return any(node.process_id in process_ids or any(_calls_any(child, process_ids)
                                                     for child in _callbacks(node.arguments))
               for node in graph.nodes.values())


def _references_nodes(value: Any) -> bool:
    if isinstance(value, Mapping):
        if "from_node" in value:
            return True
        if "process_graph" in value:
            return False
        return any(_references_nodes(v) for v in value.values())
    if isinstance(value, list):
        return any(_references_nodes(v) for v in value)
    return False


# --- tiles ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TileBudget:
    """How much a graph's tiles may hold: `cap_bytes` of loaded data, and at most `most_ahead`
    read-ahead batches (both smaller for HEAVY_PER_PIXEL graphs)."""

    cap_bytes: int
    most_ahead: int

    @classmethod
    def of(cls, graph: ProcessGraph) -> TileBudget:
        if _calls_any(graph, HEAVY_PER_PIXEL):
            return cls(TILE_LOAD_BUDGET_BYTES, 1)
        return cls(TILE_LOAD_CAP_BYTES, READ_AHEAD_BATCHES)


def choose_tile_size(plans: Iterable[LoadPlan], *, cap_bytes: int = TILE_LOAD_CAP_BYTES) -> int:
    """The largest tile edge whose loaded data (all loads, in their type) fits in `cap_bytes`."""
    bytes_per_pixel = sum(plan.held_bytes() // max(plan.grid.width * plan.grid.height, 1) for plan in plans)
    for size in TILE_SIZES:
        if size * size * bytes_per_pixel <= cap_bytes:
            return size
    return TILE_SIZES[-1]


def tile_grids(grid: Grid, size: int) -> list[Grid]:
    """Windows of `grid` of at most size × size px, row by row from the north-west corner."""
    tiles = []
    for row in range(0, grid.height, size):
        for col in range(0, grid.width, size):
            transform = grid.transform @ Affine.translation(col, row)
            tiles.append(Grid(grid.crs, transform, min(size, grid.width - col), min(size, grid.height - row)))
    return tiles


def tiles_per_batch(plans: Iterable[LoadPlan], tile: Grid) -> int:
    """Tiles of a read-ahead batch: up to READ_AHEAD_TILES, as many as READ_AHEAD_BATCH_BUDGET_BYTES hold."""
    tile_bytes = sum(plan.size_bytes(tile) for plan in plans)
    return max(1, min(READ_AHEAD_TILES, READ_AHEAD_BATCH_BUDGET_BYTES // max(tile_bytes, 1)))


def batches_ahead(plans: Iterable[LoadPlan], tile: Grid) -> int:
    """Batches fetched ahead of the one being evaluated: up to READ_AHEAD_BATCHES, as many as
    READ_AHEAD_KEPT_BUDGET_BYTES hold beside it, at least one."""
    plans = list(plans)
    batch_bytes = tiles_per_batch(plans, tile) * sum(plan.size_bytes(tile) for plan in plans)
    return max(1, min(READ_AHEAD_BATCHES, READ_AHEAD_KEPT_BUDGET_BYTES // max(batch_bytes, 1) - 1))


def read_ahead_batches(tiles: list[Grid], per_batch: int = READ_AHEAD_TILES) -> tuple[list[Grid], list[int]]:
    """`tiles` (row by row) grouped into windows of up to `per_batch` neighbours in a row, and the
    window of each tile."""
    batches: list[Grid] = []
    counts: list[int] = []
    batch_of: list[int] = []
    for tile in tiles:
        last = batches[-1] if batches else None
        if (last is not None and counts[-1] < per_batch and tile.transform.f == last.transform.f
                and tile.height == last.height and tile.transform.c == (last.transform @ (last.width, 0))[0]):
            batches[-1] = Grid(last.crs, last.transform, last.width + tile.width, last.height)
            counts[-1] += 1
        else:
            batches.append(tile)
            counts.append(1)
        batch_of.append(len(batches) - 1)
    return batches, batch_of


# --- the run --------------------------------------------------------------------------------------

@dataclass
class TiledRun:
    """The outcome of `run_tiled`: whether it ran, why not, and what it wrote."""

    ran: bool
    reason: str | None = None
    records: list[AssetRecord] = field(default_factory=list)
    tiles: int = 0


def run_tiled(process: Mapping[str, Any], env: EvalEnv, *, registry: ProcessRegistry = DEFAULT_REGISTRY,
              tile_size: int | None = None, workers: int = TILE_WORKERS,
              window: tuple[int, int, int, int] | None = None, grid_size: tuple[int, int] | None = None,
              frozen: Mapping[str, LoadPlan] | None = None) -> TiledRun:
    """Evaluate `process` tile by tile when it can be (see the module docstring); `ran` False means
    nothing was written and the caller evaluates the whole cube. openEO errors propagate.

    `window` ([col_off, row_off, width, height] of the output grid, a fanned-out run's tile) limits
    the run to that part of the grid: the outputs cover just the window, pixel for pixel that part
    of the whole grid's outputs; `grid_size` ((width, height), px) is the grid the window was cut from,
    checked against the loads' (ValueError); `frozen`: the loads' plans made by PlanRun (`plan_loads`)."""
    graph = ProcessGraph(process["process_graph"])
    obstacle = tiling_obstacle(graph)
    if obstacle is not None:
        return TiledRun(False, obstacle)
    bound_heaps()  # the tiles' threads share two heaps
    arguments = parameter_defaults(process)
    planned = plan_loads(process, env, registry=registry, frozen=frozen)
    if isinstance(planned, str):
        return TiledRun(False, planned)
    context, grid = planned
    if grid_size is not None and (grid.width, grid.height) != tuple(grid_size):
        raise ValueError(f"the window's grid is {grid_size[0]} × {grid_size[1]} px, the loads give "
                         f"{grid.width} × {grid.height} px")
    if window is not None:
        grid = window_grid(grid, *window)
    budget = TileBudget.of(graph)
    size = tile_size or choose_tile_size(context.loads.values(), cap_bytes=budget.cap_bytes)
    tiles = tile_grids(grid, size)
    outputs = TileOutputs(env.require_results(), grid, env.reporter)
    implicit_output = not any(node.process_id == SAVE_PROCESS for node in graph.nodes.values())
    env.reporter.log(f"Tiled execution: {len(tiles)} tile(s) of up to {size} × {size} px over the "
                     f"{grid.width} × {grid.height} px grid, {min(workers, len(tiles))} at a time")
    tile_reporter = _TileReporter(env.reporter)
    context = replace(context, workers=min(workers, len(tiles)))

    read_ahead = ReadAhead(context.loads.values(), env.rasters, tiles, most_ahead=budget.most_ahead)

    def evaluate(index: int, tile: Grid) -> None:
        read_ahead.before(index)
        tile_env = replace(env, tile=replace(context, grid=tile, outputs=outputs), reporter=tile_reporter)
        result = evaluate_graph(process["process_graph"], tile_env, registry=registry, arguments=arguments)
        if implicit_output:
            outputs.write(IMPLICIT_OUTPUT, GTIFF, {}, result)
        del result, tile_env
        # the tile's arrays are freed: their pages go back before the next tiles peak
        trim_heaps(at_most_every_s=HEAP_TRIM_INTERVAL_S)

    try:
        # xarray options are process-wide: set them once here, so the evaluations in the threads
        # (which set the same values) never see another thread restore them mid-way.
        # GDAL's block cache size is process-wide too: bounded for the whole run (see io.save.write_env).
        with (numeric_conventions(), write_env(), read_ahead,
              ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tile") as pool):
            futures = [pool.submit(evaluate, index, tile) for index, tile in enumerate(tiles)]
            try:
                for done, future in enumerate(as_completed(futures), start=1):
                    future.result()
                    env.reporter.progress(done / len(tiles))
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
            if implicit_output:
                env.reporter.log("The process graph has no save_result: saving the result as GTiff")
            release_memory()  # what the tiles held, before the outputs' COG copies peak
            records = outputs.finalize(graph.end_node_ids)
    except TilingNotApplicable as exc:
        outputs.discard()
        return TiledRun(False, str(exc))
    except BaseException:
        outputs.discard()
        raise
    return TiledRun(True, records=records, tiles=len(tiles))


def plan_loads(process: Mapping[str, Any], env: EvalEnv, *, registry: ProcessRegistry = DEFAULT_REGISTRY,
               frozen: Mapping[str, LoadPlan] | None = None) -> tuple[TileContext, Grid] | str:
    """Plan every load of the graph once, for the whole grid (logs what it found, raises
    NoDataAvailable, ...): the context whose `grid` windows the loads then read, and that grid; or
    why the loads cannot be read by window. `frozen`: the plans PlanRun made of these loads (a
    fanned-out run's step takes them instead of planning again)."""
    graph = ProcessGraph(process["process_graph"])
    arguments = parameter_defaults(process)
    context = TileContext(loads={}, load_needs=load_needs_of(graph, arguments))
    load_nodes = {node_id for node_id, node in graph.nodes.items() if node.process_id in LOAD_PROCESSES}
    if frozen is not None and set(frozen) == load_nodes:
        context.loads.update(frozen)
        grids = {plan.grid for plan in frozen.values()}
        if len(grids) == 1:
            return context, grids.pop()
        context.loads.clear()
    planning_env = replace(env, tile=context,
                           single_precision_outputs=outputs_single_precision(graph))
    for node_id, node in graph.nodes.items():
        if node.process_id in LOAD_PROCESSES:
            if _references_nodes(node.arguments):
                return f"the arguments of '{node.process_id}' depend on other nodes (node '{node_id}')"
            spec = {"process_id": node.process_id, "arguments": dict(node.arguments), "result": True}
            evaluate_graph({node_id: spec}, planning_env, registry=registry, arguments=arguments)
    grids = {plan.grid for plan in context.loads.values()}
    if len(grids) != 1:
        return "the loaded cubes lie on different grids" if grids else "the graph loads no data"
    return context, grids.pop()


class ReadAhead:
    """Fetches the blocks of the tiles' remote assets (local files are left to the tiles' own reads,
    `io.load.prefetch`) in batches (`tiles_per_batch` neighbours in a row), while the
    batches before them are evaluated: `before(i)` queues tile i's batch and the `batches_ahead`
    after it (READ_AHEAD_BATCHES, fewer for heavy tiles, at most `most_ahead`), and waits for tile
    i's. A batch's window of each asset is fetched and decoded once, and kept in the file's type until
    its tiles have read their parts (`RasterReader.prefetch`), never as a cube: memory stays bounded
    by the tiles in flight plus READ_AHEAD_BATCHES + 1 batches' windows (`tiles_per_batch` keeps a
    batch within READ_AHEAD_BATCH_BUDGET_BYTES)."""

    def __init__(self, plans: Iterable[LoadPlan], reader: Any, tiles: list[Grid], *,
                 most_ahead: int = READ_AHEAD_BATCHES) -> None:
        self._plans = list(plans)
        self._reader = reader
        self._batches, self._batch_of = read_ahead_batches(
            tiles, tiles_per_batch(self._plans, tiles[0]) if tiles else READ_AHEAD_TILES)
        self._ahead = min(most_ahead, batches_ahead(self._plans, tiles[0]) if tiles and self._plans else most_ahead)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead")
        self._started: dict[int, Future[None]] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(cancel_futures=True)  # (waits for the fetch under way)
        if self._reader is not None:
            self._reader.drop_kept(self)

    def before(self, tile_index: int) -> None:
        if self._reader is None or not self._plans:
            return
        batch = self._batch_of[tile_index]
        with self._lock:
            for ahead in range(batch, batch + 1 + self._ahead):
                if ahead < len(self._batches) and ahead not in self._started:
                    self._started[ahead] = self._pool.submit(self._fetch, self._batches[ahead])
            own = self._started[batch]
        own.result()

    def _fetch(self, batch: Grid) -> None:
        try:
            for plan in self._plans:
                prefetch(plan, self._reader, batch, owner=self)
        except Exception:  # noqa: BLE001 - only a head start: the tile's own read reports the failure
            logger.debug("read-ahead of %s failed", batch, exc_info=True)


def parameter_defaults(process: Mapping[str, Any]) -> dict[str, Any]:
    """Values of the process's parameters: their declared defaults (as `graph.evaluate_process`)."""
    return {p["name"]: p["default"] for p in process.get("parameters") or []
            if isinstance(p, Mapping) and "name" in p and "default" in p}
